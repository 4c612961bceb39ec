/**
 * Schemas of the JSON frame payloads (PROTOCOL: HEALTH_REPORT §5.9, CONFIG_CHANGED §5.10), validated with
 * valibot on receipt so the session hands out typed values only. Unknown keys are dropped, so a newer
 * peer may add fields without breaking an older one.
 */
import * as v from "valibot";

export const ServerHealthSchema = v.object({
  /** `host:port` of one resolved server address. */
  address: v.pipe(v.string(), v.minLength(1), v.maxLength(300)),
  healthy: v.boolean(),
});

export const AppHealthSchema = v.object({
  name: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
  servers: v.pipe(v.array(ServerHealthSchema), v.maxLength(1024)),
});

export const HealthReportSchema = v.object({
  apps: v.pipe(v.array(AppHealthSchema), v.maxLength(10_000)),
});
export type HealthReport = v.InferOutput<typeof HealthReportSchema>;

export const ConfigChangedSchema = v.object({
  catalogVersion: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
});
export type ConfigChanged = v.InferOutput<typeof ConfigChangedSchema>;
