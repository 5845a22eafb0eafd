"""The common shape of a comparison's result, which report.py and chart.py
render without knowing the comparison.

    {
      "name", "title", "description", "method", "params": {...},
      "baseline": "berth-runtime",
      "metrics": [{"key", "label", "unit", "better": "lower", "unavailable"?: why}],
      "subjects": [{"name", "measured", "reason", "samples": {key: [...]},
                    "stats": {key: {n, median, p90, min, max, mean, stdev}},
                    "extra": {...}}],
      "ratios": {key: {peer_name: baseline_median / peer_median or None}},
      "notes": [...], "seconds": float
    }
"""

from __future__ import annotations

from .util import summarize

BASELINE = "berth-runtime"


class Result:
    def __init__(self, name: str, title: str, description: str, method: str, params: dict,
                 metrics: list[dict], baseline: str = BASELINE):
        self.d = {
            "name": name, "title": title, "description": description, "method": method,
            "params": params, "baseline": baseline, "metrics": metrics,
            "subjects": [], "ratios": {}, "notes": [], "seconds": None,
        }
        self._by_name: dict[str, dict] = {}

    def subject(self, name: str) -> dict:
        if name not in self._by_name:
            s = {"name": name, "measured": True, "reason": None,
                 "samples": {m["key"]: [] for m in self.d["metrics"]}, "stats": {}, "extra": {}}
            self._by_name[name] = s
            self.d["subjects"].append(s)
        return self._by_name[name]

    def not_measured(self, name: str, reason: str) -> None:
        s = self.subject(name)
        s["measured"] = False
        s["reason"] = reason
        s["samples"] = {k: [] for k in s["samples"]}  # a failed subject's numbers never count

    def add(self, name: str, key: str, value: float) -> None:
        s = self.subject(name)
        if key in s["extra"].get("not_measured", {}):
            return  # that metric failed for this subject: none of its numbers count
        s["samples"][key].append(value)

    def metric_not_measured(self, name: str, key: str, reason: str) -> None:
        """One metric of one subject failed (the subject's other metrics stand):
        its samples are dropped and the report says why."""
        s = self.subject(name)
        s["extra"].setdefault("not_measured", {}).setdefault(key, reason)
        s["samples"][key] = []

    def metric_measured(self, name: str, key: str) -> bool:
        s = self.subject(name)
        return s["measured"] and key not in s["extra"].get("not_measured", {})

    def metric_unavailable(self, key: str, reason: str) -> None:
        """The metric could not be measured for anyone (e.g. a tool is missing)."""
        for m in self.d["metrics"]:
            if m["key"] == key:
                m["unavailable"] = reason

    def note(self, text: str) -> None:
        self.d["notes"].append(text)

    def finish(self, seconds: float) -> dict:
        self.d["seconds"] = round(seconds, 1)
        for s in self.d["subjects"]:
            s["stats"] = {k: summarize(v) for k, v in s["samples"].items()} if s["measured"] else {}
            if s["measured"] and not any(s["samples"].values()):
                s["measured"] = False
                nm = s["extra"].get("not_measured", {})
                s["reason"] = s["reason"] or ("; ".join(f"{k}: {v}" for k, v in nm.items()) if nm else "no samples")
        base = self._by_name.get(self.d["baseline"])
        for m in self.d["metrics"]:
            k = m["key"]
            per = {}
            for s in self.d["subjects"]:
                if s["name"] == self.d["baseline"]:
                    continue
                if base and base["measured"] and s["measured"]:
                    b, p = base["stats"][k].get("median"), s["stats"][k].get("median")
                    per[s["name"]] = (b / p) if (b is not None and p) else None
                else:
                    per[s["name"]] = None
            self.d["ratios"][k] = per
        return self.d
