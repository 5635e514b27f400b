// The periods charts and dashboards offer, with the bucket each is drawn in.
export const RANGES = [
  { key: "hour", title: "Hour", ms: 3600e3, bucket: "PT1M", bucketMs: 60e3 },
  { key: "day", title: "Day", ms: 86400e3, bucket: "PT15M", bucketMs: 900e3 },
  { key: "week", title: "Week", ms: 7 * 86400e3, bucket: "PT1H", bucketMs: 3600e3 },
  { key: "month", title: "Month", ms: 30 * 86400e3, bucket: "PT6H", bucketMs: 6 * 3600e3 },
];

// An ISO 8601 interval ending after now, aligned to the bucket so buckets are stable.
export function intervalFor(range, now = Date.now()) {
  const end = Math.ceil((now + 1) / range.bucketMs) * range.bucketMs;
  const start = end - range.ms;
  return `${new Date(start).toISOString().replace(".000Z", "Z")}/${new Date(end).toISOString().replace(".000Z", "Z")}`;
}
