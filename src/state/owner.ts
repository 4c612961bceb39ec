/**
 * Files root writes into the service user's state dir (the upgrade oneshot, a manual `sudo connector
 * upgrade`) must stay readable and replaceable by that user: they are given to the dir's owner.
 */
import { statSync } from "node:fs";

export interface FileOwner {
  readonly uid: number;
  readonly gid: number;
}

/** The owner of `dir`, when this process could hand a file to someone else (it runs as root); else undefined. */
export function ownerToGiveTo(dir: string): FileOwner | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const { uid, gid } = statSync(dir);
  return uid === 0 && gid === 0 ? undefined : { uid, gid };
}
