"""Resumable steps: each finished step's result is kept in OUT/state.json.

A long job (synthesize, train, compress, build) is cut into named steps; a rerun
skips the steps already recorded, so an interrupted demo continues where it stopped.
"""
import json
import time
from pathlib import Path

from edgereid.atomic import write_text


class StepRunner:
    def __init__(self, out: Path, echo=print):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.state_path = self.out / "state.json"
        self.state = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
        self.echo = echo

    def run(self, name: str, fn, *, key: dict | None = None):
        """Return fn()'s JSON-able result, from the state file when the same step (and key) already ran."""
        done = self.state.get(name)
        if done is not None and done.get("key") == key:
            self.echo(f"[{name}] done before ({done['seconds']:.0f} s), skipped")
            return done["result"]
        self.echo(f"[{name}] ...")
        start = time.monotonic()
        result = fn()
        seconds = time.monotonic() - start
        self.state[name] = {"key": key, "seconds": seconds, "result": result}
        write_text(self.state_path, json.dumps(self.state, indent=1, sort_keys=True))
        self.echo(f"[{name}] finished in {seconds:.0f} s")
        return result

    def seconds(self, name: str) -> float:
        return self.state[name]["seconds"]

    def timings(self) -> dict:
        """Step name -> seconds it took (a skipped step keeps the time of the run that did it)."""
        return {name: done["seconds"] for name, done in self.state.items()}
