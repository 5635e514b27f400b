// Colour scales for sensor values, chosen by ObservedProperty and unit.

const CLASS_COLOURS = ["#1a9850", "#91cf60", "#fee08b", "#fc8d59", "#d73027"];
const CLASS_LABELS = ["very good", "good", "moderate", "poor", "very poor"];
const RAMP = ["#313695", "#4575b4", "#74add1", "#abd9e9", "#fee090", "#fdae61", "#f46d43", "#a50026"];
export const NO_VALUE = "#9e9e9e";

// Upper bounds of the Umweltbundesamt air quality index classes, in µg/m³
// (hourly values; the fifth class is everything above the last bound).
const UBA = {
  pm10: [9, 27, 54, 90],
  pm25: [5, 15, 30, 50],
  no2: [10, 30, 60, 100],
  o3: [24, 72, 144, 240],
};

// Fixed ranges for quantities whose sensible span does not depend on the city.
const RANGES = {
  Cel: [-10, 35],
  "%": [0, 100],
};

export function pollutantOf(op) {
  const text = `${op?.definition ?? ""} ${op?.name ?? ""}`.toLowerCase();
  if (/pm2[._]?5|pm25/.test(text)) return "pm25";
  if (/pm10/.test(text)) return "pm10";
  if (/no2/.test(text)) return "no2";
  if (/\bo3\b|ozone/.test(text)) return "o3";
  return null;
}

export function scaleKey(op, unit) {
  const pollutant = pollutantOf(op);
  if (pollutant) return `uba:${pollutant}`;
  return `${op?.name ?? "value"}|${unit ?? ""}`;
}

// A scale per key. Without a fixed rule, the span of the values seen for that
// ObservedProperty decides, so every quantity uses its whole ramp.
export class Scales {
  constructor() {
    this.seen = new Map(); // key -> {min, max, label, unit}
  }

  observe(key, value, label, unit) {
    if (typeof value !== "number" || !Number.isFinite(value)) return;
    const s = this.seen.get(key);
    if (!s) this.seen.set(key, { min: value, max: value, label, unit });
    else {
      if (value < s.min) s.min = value;
      if (value > s.max) s.max = value;
    }
  }

  colour(key, value) {
    if (typeof value !== "number" || !Number.isFinite(value)) return NO_VALUE;
    if (key.startsWith("uba:")) {
      const bounds = UBA[key.slice(4)];
      const i = bounds.findIndex((b) => value <= b);
      return CLASS_COLOURS[i < 0 ? 4 : i];
    }
    const unit = key.split("|")[1];
    const [lo, hi] = RANGES[unit] ?? [this.seen.get(key)?.min ?? value, this.seen.get(key)?.max ?? value];
    const t = hi > lo ? Math.min(1, Math.max(0, (value - lo) / (hi - lo))) : 0.5;
    return RAMP[Math.min(RAMP.length - 1, Math.floor(t * RAMP.length))];
  }

  // Legend entries: [{title, stops: [{colour, label}]}]
  legend(unitText, numberText) {
    const out = [];
    for (const [key, s] of this.seen) {
      if (key.startsWith("uba:")) {
        const bounds = UBA[key.slice(4)];
        out.push({
          title: `${s.label} (${unitText(s.unit)}, UBA index)`,
          stops: CLASS_COLOURS.map((colour, i) => ({
            colour,
            label: `${CLASS_LABELS[i]} ${i === 0 ? "0" : bounds[i - 1] + 1}${i < 4 ? `–${bounds[i]}` : "+"}`,
          })),
        });
      } else {
        const unit = key.split("|")[1];
        const [lo, hi] = RANGES[unit] ?? [s.min, s.max];
        out.push({
          title: `${s.label} (${unitText(s.unit) || "no unit"})`,
          stops: [
            { colour: RAMP[0], label: numberText(lo) },
            { colour: RAMP[Math.floor(RAMP.length / 2)], label: numberText((lo + hi) / 2) },
            { colour: RAMP[RAMP.length - 1], label: numberText(hi) },
          ],
        });
      }
    }
    return out;
  }
}
