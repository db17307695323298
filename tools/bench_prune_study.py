"""Prunability study: criteria x schedules x MACs targets, same domain and domain shift, vs scratch.

    nice -n 19 .venv/bin/python tools/bench_prune_study.py --base-epochs 40   # ~80 min, 1 thread
    .venv/bin/python tools/bench_prune_study.py --report-only              # the page from finished rows

Bases (the engine's training loop, `edgereid.engine.train`) are trained on synthetic
domain a and domain b, one epoch at a time with an evaluation after each (the curve),
until the mAP plateaus or --base-epochs. Then, with the same fine-tune budget
(--ft-epochs epochs of P x K batches) everywhere:
  (a) prune base a (l1, l2, fpgm, taylor, random; one-shot or --iter-steps steps, the
      budget split evenly between the steps) and fine-tune on a, against base a
      fine-tuned the same way (`ref`);
  (b) each (a) model (pruned on the source domain a) with a fresh identity classifier,
      fine-tuned on the target domain b and evaluated on b, against `ref` fine-tuned
      on b the same way (the gap it leaves);
  (c) a fresh network pruned while it trains (iterative, --scratch-epochs in all) vs
      the same pruned architecture re-initialised and trained from scratch for the same
      epochs; and the best (a) model (base epochs + fine-tune budget) vs its architecture
      trained from scratch for as many epochs.
The budget check fine-tunes `ref` and the best (a) row for --long-ft-epochs instead.
Every finished row is a JSON under --work/rows (delete one to redo it); a rerun
resumes, base training included. The page (docs/results/pruning.md + .png) is rewritten
atomically after each row, missing rows marked "not run"; --max-minutes stops starting
new rows once that much time has passed.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from edgereid.atomic import save_figure, write_text  # noqa: E402

SCHEDULES = ("oneshot", "iter")
TARGETS = (0.5, 0.3)
LATENCY_BOARDS = ("stm32h743", "rpi5-cpu")
LATENCY_FRACTION = 0.6   # latency asked = this x the base's predicted latency
PLATEAU_WINDOW, PLATEAU_MIN_GAIN, PLATEAU_MIN_EPOCHS = 4, 0.5, 10


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse_size(text: str) -> tuple[int, int]:
    h, _, w = text.lower().partition("x")
    return int(h), int(w)


def tkey(target: float) -> str:
    return f"{int(round(target * 100)):02d}"


class Study:
    def __init__(self, args):
        from edgereid.data import load_dataset

        self.args = args
        self.size = parse_size(args.size)
        self.work = Path(args.work)
        self.rows_dir = self.work / "rows"
        self.models_dir = self.work / "models"
        self.rows_dir.mkdir(parents=True, exist_ok=True)
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self.check_config()
        self.rows = {p.stem: json.loads(p.read_text()) for p in sorted(self.rows_dir.glob("*.json"))}
        self.started = time.monotonic()
        self.specs = {"a": args.data_a, "b": args.data_b}
        self.data = {d: load_dataset(spec, progress=False) for d, spec in self.specs.items()}
        self._eval = {}
        self.planned = 0

    # Options that change what a row measures; a work folder holds rows of one setting only.
    STUDY_OPTIONS = ("model", "width", "size", "p", "k", "base_epochs", "ft_epochs", "lr", "iter_steps",
                     "scratch_epochs", "data_a", "data_b")

    def check_config(self):
        path = self.work / "config.json"
        now = {k: getattr(self.args, k) for k in self.STUDY_OPTIONS}
        if path.exists():
            saved = json.loads(path.read_text())
            changed = [f"--{k.replace('_', '-')} {now[k]} (rows made with {saved[k]})" for k in now
                       if k in saved and saved[k] != now[k]]
            if changed:
                raise SystemExit(f"{self.work} holds rows of another setting: {', '.join(changed)}; "
                                 "use another --work or the same options")
        write_text(path, json.dumps(now, indent=1))

    # ----- data and scoring
    def eval_set(self, d):
        from edgereid.data import ReidImageDataset, build_transforms

        if d not in self._eval:
            data = self.data[d]
            records = data.query + data.gallery
            ds = ReidImageDataset(records, build_transforms(self.size, train=False))
            images = torch.stack([ds[i][0] for i in range(len(ds))])
            self._eval[d] = (images, np.array([r.pid for r in records]), np.array([r.camid for r in records]),
                             len(data.query))
        return self._eval[d]

    def score(self, model, d) -> dict:
        from edgereid.metrics.rank import evaluate_rank

        images, pid, cam, nq = self.eval_set(d)
        model.eval()
        with torch.no_grad():
            f = torch.cat([model(x) for x in images.split(128)]).numpy().astype(np.float64)
        f /= np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
        res = evaluate_rank(1.0 - f[:nq] @ f[nq:].T, pid[:nq], pid[nq:], cam[:nq], cam[nq:])
        return {"mAP": round(100 * float(res.mAP), 3), "rank1": round(100 * float(res.rank(1)), 3)}

    def loader(self, d, seed):
        from edgereid.compress.pipeline import train_loader

        return train_loader(self.data[d].train, self.size, p=self.args.p, k=self.args.k, seed=seed)

    def steps_per_epoch(self, d) -> int:
        return len(self.loader(d, 0))

    def complexity(self, model):
        from edgereid.models import model_complexity

        return model_complexity(model, self.size)

    # ----- rows
    def out_of_time(self) -> bool:
        return self.args.max_minutes is not None and time.monotonic() - self.started > 60 * self.args.max_minutes

    def row(self, key, fn, **meta):
        path = self.rows_dir / f"{key}.json"
        if key in self.rows:
            return self.rows[key]
        if self.out_of_time():
            log(f"{key}: not started (--max-minutes {self.args.max_minutes} passed)")
            return None
        log(f"[{len(self.rows) + 1} rows] {key}: running "
            f"({(time.monotonic() - self.started) / 60:.1f} min into this run)")
        t0 = time.time()
        torch.manual_seed(meta.get("seed", 0))
        result = fn()
        result.update(key=key, seconds=round(time.time() - t0, 1), **meta)
        write_text(path, json.dumps(result, indent=1, sort_keys=True))
        self.rows[key] = result
        log(f"{key}: {', '.join(f'{k} {result[k]}' for k in ('macs_ratio', 'mAP', 'rank1') if k in result)} "
            f"({result['seconds']:.0f} s)")
        write_page(self)
        return result

    def save_model(self, key, model, num_classes):
        from edgereid.engine import save_checkpoint

        save_checkpoint(self.models_dir / f"{key}.pt", model_name=self.args.model,
                        model_args={"num_classes": num_classes, "width": self.args.width},
                        state_dict=model.state_dict(), preprocess={"size": list(self.size)})

    def load_model(self, key):
        from edgereid.engine import model_from_checkpoint

        return model_from_checkpoint(self.models_dir / f"{key}.pt")[0]

    # ----- bases
    def base_dir(self, d) -> Path:
        return self.work / f"base_{d}"

    def train_base(self, d):
        """Train one epoch at a time (resumable), evaluate after each; stop at a plateau or --base-epochs."""
        from edgereid.engine import TrainConfig, model_from_checkpoint, train

        out = self.base_dir(d)
        last, curve_path = out / "last.pt", out / "curve.json"
        state = json.loads(curve_path.read_text()) if curve_path.exists() else {"curve": [], "stopped": None}
        if state["stopped"]:
            return state
        cfg = TrainConfig(model=self.args.model, data=self.specs[d], epochs=self.args.base_epochs,
                          width=self.args.width, image_size=self.size, out=str(out), progress=False,
                          warmup_epochs=2, p=self.args.p, k=self.args.k, seed=0, log_every_steps=50)
        spe = self.steps_per_epoch(d)
        while True:
            if last.exists():
                model, ckpt = model_from_checkpoint(last)
                done = int(ckpt["epoch"])
                if not state["curve"] or state["curve"][-1]["epoch"] < done:
                    state["curve"].append({"epoch": done, **self.score(model, d)})
                    c = state["curve"][-1]
                    log(f"base {d} epoch {done}/{self.args.base_epochs}: mAP {c['mAP']:.2f} rank-1 {c['rank1']:.2f}")
                mAPs = [c["mAP"] for c in state["curve"]]
                if done >= PLATEAU_MIN_EPOCHS and len(mAPs) > PLATEAU_WINDOW and \
                        max(mAPs[-PLATEAU_WINDOW:]) - max(mAPs[:-PLATEAU_WINDOW]) < PLATEAU_MIN_GAIN:
                    state["stopped"] = f"plateau: the last {PLATEAU_WINDOW} epochs gained < {PLATEAU_MIN_GAIN} mAP"
                elif done >= self.args.base_epochs:
                    state["stopped"] = f"--base-epochs {self.args.base_epochs} reached"
                state["epochs"] = done
                write_text(curve_path, json.dumps(state, indent=1))
                if state["stopped"]:
                    log(f"base {d}: stopped after {done} epochs ({state['stopped']})")
                    write_page(self)
                    return state
            if self.out_of_time():
                raise SystemExit(f"--max-minutes passed while training base {d}; rerun to resume")
            log(f"base {d}: training epoch {len(state['curve']) + 1} ({spe} steps)")
            # One epoch per call (stop_after_steps stops at the epoch-end checkpoint), then the evaluation.
            train(_with(cfg, stop_after_steps=spe), resume=last.exists(), dataset=self.data[d])

    def base_model(self, d):
        from edgereid.engine import model_from_checkpoint

        return model_from_checkpoint(self.base_dir(d) / "last.pt")[0]

    # ----- fine-tuning and pruning
    def finetune(self, model, d, seed, fraction=1.0, chunk=0, epochs=None):
        """`fraction` of the fine-tune budget (--ft-epochs epochs, or `epochs`) on domain d; chunk i of a
        split budget draws its own batches (loader seed), warm-up the same share of its steps."""
        from edgereid.compress.pipeline import finetune

        epochs = epochs or self.args.ft_epochs
        if fraction >= 1.0:
            return finetune(model, self.loader(d, seed), epochs, self.data[d].num_train_pids, lr=self.args.lr,
                            warmup_epochs=1.0)
        steps = max(1, int(round(fraction * epochs * self.steps_per_epoch(d))))
        return finetune(model, self.loader(d, 1000 * seed + chunk + 1), 1, self.data[d].num_train_pids,
                        lr=self.args.lr, max_steps_per_epoch=steps, warmup_epochs=1.0 / epochs)

    def prune(self, model, d, criterion, schedule, target, seed, between=None):
        """Prune `model` (trained on d) to `target` x its MACs; `between(model, i)` trains after step i
        of an iterative schedule (not after the last)."""
        from edgereid.compress import prune
        from edgereid.losses import ReidLoss

        calib = self.loader(d, seed)
        batch = next(iter(calib))
        example = batch[0][:8]
        ce = ReidLoss(self.data[d].num_train_pids)

        def taylor_loss(net):
            return ce.cross_entropy(net(batch[0]), batch[1])

        steps = self.args.iter_steps if schedule == "iter" else 1
        counter = iter(range(1, steps))
        pruned, report = prune(model, example, target, criterion, calib=calib, steps=steps,
                               finetune=(lambda m: between(m, next(counter))) if steps > 1 else None,
                               loss_fn=taylor_loss, seed=seed, input_size=self.size, log=log)
        return pruned, report

    def measured(self, model, d, base_macs) -> dict:
        params, macs = self.complexity(model)
        return {"params": params, "macs": macs, "macs_ratio": round(macs / base_macs, 4), **self.score(model, d)}

    # (a) same domain
    def same_ref(self, seed):
        def run():
            base = self.base_model("a")
            macs = self.complexity(base)[1]
            m = self.finetune(base, "a", seed)
            self.save_model(f"same_ref_s{seed}", m, self.data["a"].num_train_pids)
            return self.measured(m, "a", macs)

        return self.row(f"same_ref_s{seed}", run, study="same", criterion="none", schedule="none", target=1.0,
                        seed=seed)

    def same(self, criterion, schedule, target, seed):
        key = f"same_{criterion}_{schedule}_{tkey(target)}_s{seed}"

        def run():
            base = self.base_model("a")
            macs = self.complexity(base)[1]
            steps = self.args.iter_steps if schedule == "iter" else 1
            share = 1.0 / steps
            m, rep = self.prune(base, "a", criterion, schedule, target, seed,
                                between=lambda net, i: self.finetune(net, "a", seed, share, chunk=i))
            m = self.finetune(m, "a", seed, share if steps > 1 else 1.0, chunk=steps)
            self.save_model(key, m, self.data["a"].num_train_pids)
            return {**self.measured(m, "a", macs), "channel_ratio": rep["history"][-1]["channel_ratio"]}

        return self.row(key, run, study="same", criterion=criterion, schedule=schedule, target=target, seed=seed)

    # the fine-tune budget's weight: ref and one pruned row with --long-ft-epochs instead
    def budget(self, criterion, schedule, target, epochs, seed=0):
        key = (f"budget_ref_ft{epochs}_s{seed}" if criterion == "none"
               else f"budget_{criterion}_{schedule}_{tkey(target)}_ft{epochs}_s{seed}")

        def run():
            base = self.base_model("a")
            macs = self.complexity(base)[1]
            steps = self.args.iter_steps if schedule == "iter" else 1
            m = base
            if criterion != "none":
                m, _ = self.prune(base, "a", criterion, schedule, target, seed,
                                  between=lambda net, i: self.finetune(net, "a", seed, 1.0 / steps, chunk=i,
                                                                       epochs=epochs))
            m = self.finetune(m, "a", seed, 1.0 / steps if steps > 1 else 1.0, chunk=steps, epochs=epochs)
            return {**self.measured(m, "a", macs), "ft_epochs": epochs}

        return self.row(key, run, study="budget", criterion=criterion, schedule=schedule, target=target, seed=seed)

    # (b) source a -> target b
    def shift(self, source_key, criterion, schedule, target, seed):
        key = "shift" + source_key[len("same"):]

        def run():
            m = self.load_model(source_key)
            base_macs = self.complexity(self.base_model("a"))[1]
            torch.manual_seed(seed)
            fresh_classifier(m, self.data["b"].num_train_pids)
            m = self.finetune(m, "b", seed)
            return self.measured(m, "b", base_macs)

        return self.row(key, run, study="shift", criterion=criterion, schedule=schedule, target=target, seed=seed,
                        source=source_key)

    def zero_shot(self):
        def run():
            base = self.base_model("a")
            return self.measured(base, "b", self.complexity(base)[1])

        return self.row("shift_zero_shot", run, study="shift-reference", seed=0)

    # (c) prune while training vs scratch
    def prune_while_training(self, criterion, target, seed):
        key = f"pwt_{criterion}_{tkey(target)}_s{seed}"

        def run():
            from edgereid.models import build_model

            total, steps = self.args.scratch_epochs, self.args.iter_steps
            warm = max(1, total // 4)
            final = total - warm - (steps - 1)
            if final < 1:
                raise SystemExit(f"--scratch-epochs {total} too small for {steps} pruning steps")
            na = self.data["a"].num_train_pids
            torch.manual_seed(seed)
            net = build_model(self.args.model, num_classes=na, width=self.args.width)
            base_macs = self.complexity(net)[1]
            from edgereid.compress.pipeline import finetune

            def train_epochs(m, epochs, chunk):
                return finetune(m, self.loader("a", 1000 * seed + 100 + chunk), epochs, na, lr=self.args.lr,
                                warmup_epochs=1.0)

            net = train_epochs(net, warm, 0)
            m, rep = self.prune(net, "a", criterion, "iter", target, seed,
                                between=lambda mm, i: train_epochs(mm, 1, i))
            m = train_epochs(m, final, steps)
            self.save_model(key, m, na)
            return {**self.measured(m, "a", base_macs), "epochs": total,
                    "plan": f"{warm} epoch(s) unpruned, {steps} pruning steps 1 epoch apart, {final} epoch(s) after"}

        return self.row(key, run, study="scratch", kind="prune-while-training", criterion=criterion,
                        target=target, seed=seed)

    def scratch(self, arch_key, target, seed):
        key = f"scratch_{tkey(target)}_s{seed}"

        def run():
            from edgereid.compress.pipeline import finetune

            na = self.data["a"].num_train_pids
            m = self.load_model(arch_key)
            torch.manual_seed(seed)
            reinitialise(m)
            base_macs = self.complexity(self.base_model("a"))[1]
            m = finetune(m, self.loader("a", 1000 * seed + 99), self.args.scratch_epochs, na, lr=self.args.lr,
                         warmup_epochs=2.0)
            return {**self.measured(m, "a", base_macs), "epochs": self.args.scratch_epochs,
                    "architecture_of": arch_key}

        return self.row(key, run, study="scratch", kind="scratch", criterion="none", target=target, seed=seed)

    def scratch_long(self, pruned_key, target, seed=0):
        """The pruned architecture of `pruned_key` trained from scratch for as many epochs as that row's
        model saw in all (base training + fine-tune budget): equal MACs, equal epochs."""
        key = f"scratch_long_{tkey(target)}_s{seed}"
        curve = json.loads((self.base_dir("a") / "curve.json").read_text())
        epochs = int(curve["epochs"]) + self.args.ft_epochs

        def run():
            from edgereid.compress.pipeline import finetune

            na = self.data["a"].num_train_pids
            m = self.load_model(pruned_key)
            torch.manual_seed(seed)
            reinitialise(m)
            base_macs = self.complexity(self.base_model("a"))[1]
            m = finetune(m, self.loader("a", 1000 * seed + 98), epochs, na, lr=self.args.lr, warmup_epochs=2.0)
            return {**self.measured(m, "a", base_macs), "epochs": epochs, "architecture_of": pruned_key}

        return self.row(key, run, study="scratch", kind="scratch-long", criterion="none", target=target, seed=seed)

    # latency-aware pruning through the CLI
    def latency(self, board_name):
        key = f"latency_{board_name.replace('-', '_')}"

        def run():
            from edgereid.boards import load_board
            from edgereid.latency.pruning import latency_target

            ckpt = self.base_dir("a") / "last.pt"
            before = latency_target(load_board(board_name), 1.0, self.size).cost(self.base_model("a"))
            asked = float(f"{LATENCY_FRACTION * before:.4g}")
            out = self.work / key
            cmd = ["compress", str(ckpt.relative_to(REPO) if ckpt.is_relative_to(REPO) else ckpt),
                   "--dataset", self.specs["a"], "--prune-latency-ms", f"{asked:g}", "--board", board_name,
                   "--quantize", "none", "--out", str(out.relative_to(REPO) if out.is_relative_to(REPO) else out)]
            proc = subprocess.run([str(REPO / ".venv/bin/edgereid"), *cmd], cwd=REPO, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"edgereid {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
            rep = json.loads((out / "report.json").read_text())
            t = rep["prune"]["target"]
            pruned_line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("pruned:")), "")
            return {"command": "edgereid " + " ".join(cmd), "board": board_name, "predicted_before_ms": t["before"],
                    "asked_ms": t["value"], "reached_ms": t["reached"], "macs_ratio": round(rep["prune"]["macs_ratio"], 4),
                    "mAP_before": round(100 * rep["before"]["mAP"], 3), "rank1_before": round(100 * rep["before"]["rank1"], 3),
                    "mAP": round(100 * rep["float"]["mAP"], 3), "rank1": round(100 * rep["float"]["rank1"], 3),
                    "cli_line": pruned_line}

        return self.row(key, run, study="latency", seed=0)

    def latency_unreachable(self, board_name):
        key = f"latency_unreachable_{board_name.replace('-', '_')}"

        def run():
            ckpt = self.base_dir("a") / "last.pt"
            out = self.work / key
            cmd = ["compress", str(ckpt.relative_to(REPO) if ckpt.is_relative_to(REPO) else ckpt), "--dataset",
                   self.specs["a"], "--prune-latency-ms", "0.001", "--board", board_name, "--quantize", "none",
                   "--out", str(out.relative_to(REPO) if out.is_relative_to(REPO) else out)]
            proc = subprocess.run([str(REPO / ".venv/bin/edgereid"), *cmd], cwd=REPO, capture_output=True, text=True)
            # TensorFlow's start-up chatter goes to stderr too; the page shows the CLI's own line.
            lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error")]
            return {"command": "edgereid " + " ".join(cmd), "returncode": proc.returncode,
                    "error_lines": lines[-3:], "board": board_name}

        return self.row(key, run, study="latency", seed=0)


def _with(cfg, **changes):
    import dataclasses

    return dataclasses.replace(cfg, **changes)


def fresh_classifier(model: nn.Module, num_classes: int) -> None:
    """A new identity classifier for another domain's identities (initialised as BNNeckHead's)."""
    head = model.head
    head.classifier = nn.Linear(head.classifier.in_features, num_classes, bias=False)
    nn.init.normal_(head.classifier.weight, std=0.001)


def reinitialise(model: nn.Module) -> None:
    """Fresh weights for a (pruned) ResNet, as `build_model` initialises one: Kaiming convs (fan-out
    of the pruned widths), unit BNs with each residual branch's last BN at zero, the head's init."""
    from edgereid.models.heads import init_backbone
    from edgereid.models.resnet import BasicBlock

    init_backbone(model, lambda m: m.bn2 if isinstance(m, BasicBlock) else None)
    head = model.head
    nn.init.normal_(head.classifier.weight, std=0.001)
    nn.init.ones_(head.bnneck.weight)
    nn.init.zeros_(head.bnneck.bias)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()


# ----- the plan, in order of what the page needs most
def run_study(st: Study):
    args = st.args
    crits = args.criteria.split(",")
    targets = [float(t) for t in args.targets.split(",")]
    st.train_base("a")
    st.same_ref(0)
    for board in LATENCY_BOARDS:
        st.latency(board)
    st.latency_unreachable("stm32h743")
    for target in targets:
        for crit in crits:
            for sched in SCHEDULES:
                st.same(crit, sched, target, 0)
        if target == targets[0]:
            best = best_row(st, "same", target)
            if best:
                for seed in range(1, args.seeds):
                    st.same_ref(seed)
                    st.same(best["criterion"], best["schedule"], target, seed)
            st.train_base("b")
            st.zero_shot()
            st.shift("same_ref_s0", "none", "none", 1.0, 0)
            for crit in crits:
                for sched in SCHEDULES:
                    key = f"same_{crit}_{sched}_{tkey(target)}_s0"
                    if key in st.rows:
                        st.shift(key, crit, sched, target, 0)
            best_shift = best_row(st, "shift", target)
            if best_shift:
                for seed in range(1, args.seeds):
                    if st.same_ref(seed):
                        st.shift(f"same_ref_s{seed}", "none", "none", 1.0, seed)
                    src = st.same(best_shift["criterion"], best_shift["schedule"], target, seed)
                    if src:
                        st.shift(src["key"], best_shift["criterion"], best_shift["schedule"], target, seed)
        pwt_crit = (best_row(st, "same", target) or {}).get("criterion", "l1")
        pwt = st.prune_while_training(pwt_crit, target, 0)
        if pwt:
            st.scratch(pwt["key"], target, 0)
    best = best_row(st, "same", targets[0])
    for epochs in long_budgets(args) if best else ():
        st.budget("none", "none", 1.0, epochs)
        st.budget(best["criterion"], best["schedule"], targets[0], epochs)
    for target in targets[1:]:
        for crit in crits:
            for sched in SCHEDULES:
                key = f"same_{crit}_{sched}_{tkey(target)}_s0"
                if key in st.rows:
                    st.shift(key, crit, sched, target, 0)
    st.latency_unreachable("rpi5-cpu")
    if args.scratch_long and best:
        st.scratch_long(best["key"], targets[0])


def long_budgets(args) -> list[int]:
    return [int(e) for e in str(args.long_ft_epochs).split(",") if e.strip()]


def best_row(st, study, target, seed=0):
    rows = [r for r in st.rows.values() if r.get("study") == study and r.get("target") == target
            and r.get("seed") == seed and r.get("criterion") not in (None, "none")]
    return max(rows, key=lambda r: (r["rank1"], r["mAP"])) if rows else None


# ----- the page
def _fmt(v, fmt="{:.2f}"):
    return fmt.format(v) if isinstance(v, (int, float)) else "not run"


def seed_stats(st, key_of):
    """(mean, sample std, values) of rank-1 and mAP over the seeds that finished."""
    rows = [st.rows.get(key_of(s)) for s in range(st.args.seeds)]
    rows = [r for r in rows if r]
    if not rows:
        return None
    out = {"n": len(rows)}
    for m in ("rank1", "mAP"):
        vals = [r[m] for r in rows]
        out[m] = (statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else float("nan"), vals)
    return out


def _ms(s, m="rank1"):
    if not s:
        return "not run"
    mean, sd, vals = s[m]
    return f"{mean:.2f} ± {sd:.2f} (n={s['n']}: {', '.join(f'{v:.2f}' for v in vals)})" if s["n"] > 1 else \
        f"{mean:.2f} (1 seed)"


def summary_lines(R, study, targets, crits) -> list[str]:
    """Schedules and criteria compared, from the seed-0 rows that finished."""
    out = []
    for target in targets:
        rows = {(c, sch): R.get(f"{study}_{c}_{sch}_{tkey(target)}_s0") for c in crits for sch in SCHEDULES}
        pairs = [(c, rows[(c, "iter")]["rank1"] - rows[(c, "oneshot")]["rank1"]) for c in crits
                 if rows[(c, "iter")] and rows[(c, "oneshot")]]
        if pairs:
            out.append(f"- {target}x MACs: iterative - one-shot rank-1, same budget: mean "
                       f"{statistics.mean(d for _, d in pairs):+.2f} over {len(pairs)} criteria ("
                       + ", ".join(f"{c} {d:+.2f}" for c, d in pairs) + ").")
        for sch in SCHEDULES:
            ranked = sorted(((c, rows[(c, sch)]["rank1"]) for c in crits if rows[(c, sch)]), key=lambda x: -x[1])
            if ranked:
                out.append(f"- {target}x MACs, {sch}: criteria by rank-1: "
                           + ", ".join(f"{c} {v:.2f}" for c, v in ranked) + " (random is the control).")
    return out


def write_page(st: Study):
    args = st.args
    crits = args.criteria.split(",")
    targets = [float(t) for t in args.targets.split(",")]
    R = st.rows
    lines = ["# Prunability study: criteria, schedules, domain shift, pruning vs scratch", "",
             "Generated by `tools/bench_prune_study.py` (measured on this machine: CPU, 1 torch thread, "
             "under `nice -n 19` on 2 cores shared with other jobs):", "",
             f"    nice -n 19 .venv/bin/python tools/bench_prune_study.py "
             f"{' '.join(a for a in sys.argv[1:] if a != '--report-only')}".rstrip(), "",
             f"Page written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; rows finished: {len(R)}. "
             "Rows marked *not run* had not finished when the page was written (the study resumes on rerun). "
             f"Time spent in the finished rows: {sum(r.get('seconds', 0) for r in R.values()) / 60:.0f} min "
             "(base training besides).", ""]
    da, db = st.data["a"], st.data["b"]
    spe = st.steps_per_epoch("a")
    brief_at = len(lines)   # "In brief" goes here once the sections below have their numbers
    brief = []
    lines += ["## Setup (scaled to the machine)", "",
              f"- Model: `{args.model}` width {args.width}, input {st.size[0]}x{st.size[1]} (chosen so that one "
              f"epoch of {spe} P x K steps (P={args.p}, K={args.k}) costs seconds, not minutes, on one thread).",
              f"- Data: synthetic domain a (`{st.specs['a']}`: {da.num_train_pids} train identities, "
              f"{len(da.train)} train images, {len(da.query)} query, {len(da.gallery)} gallery) and domain b "
              f"(`{st.specs['b']}`, other cameras, light, backgrounds and new identities: {db.num_train_pids} "
              f"train identities, {len(db.train)} train images, {len(db.query)} query, {len(db.gallery)} gallery). "
              "Evaluation on all query x all gallery images, Market-1501 rules, cosine distance.",
              f"- Fine-tune budget everywhere: {args.ft_epochs} epochs ({args.ft_epochs * spe} steps) of the "
              f"training recipe (Adam, peak lr {args.lr:g}, warm-up then cosine, label-smoothed CE + batch-hard "
              "triplet, `edgereid.compress.pipeline.finetune` on the engine's `fit`). One-shot: prune, then the "
              f"whole budget. Iterative: {args.iter_steps} geometric steps (`edgereid.compress.prune(..., steps="
              f"{args.iter_steps}, finetune=...)`), 1/{args.iter_steps} of the budget after each step. BN "
              "statistics re-estimated on training batches after every pruning step.",
              "- MACs targets are the pruned model's MACs over the unpruned base's (model_complexity); "
              "torch-pruning removes the same share of channels in every prunable group (local pruning), the "
              "embedding width and the classifier are kept.",
              f"- (b): the (a) model of the same criterion/schedule/seed (pruned and fine-tuned on a), a fresh "
              f"identity classifier, {args.ft_epochs} epochs on b, evaluated on b; the reference is the unpruned "
              "`ref` model treated the same way.",
              f"- (c): prune while training = a fresh network trained {args.scratch_epochs} epochs in all, "
              f"pruned in {args.iter_steps} steps during training; scratch = that pruned architecture "
              f"re-initialised and trained {args.scratch_epochs} epochs (one warm-up + cosine run).", ""]
    # bases
    lines += ["## Bases", ""]
    curves = {}
    for d in ("a", "b"):
        p = st.base_dir(d) / "curve.json"
        curves[d] = json.loads(p.read_text()) if p.exists() else None
    for d in ("a", "b"):
        c = curves[d]
        if not c or not c["curve"]:
            lines.append(f"- base {d}: not run")
            continue
        last = c["curve"][-1]
        lines.append(f"- base {d}: trained {c.get('epochs', last['epoch'])} epochs (`edgereid.engine.train`, "
                     f"cosine over --base-epochs {args.base_epochs}, warm-up 2); "
                     f"{'stopped: ' + c['stopped'] if c.get('stopped') else 'still training'}; "
                     f"final mAP {last['mAP']:.2f}, rank-1 {last['rank1']:.2f} on domain {d}.")
    more = [(e, R[f"budget_ref_ft{e}_s0"]) for e in long_budgets(args) if f"budget_ref_ft{e}_s0" in R]
    if more and curves["a"] and curves["a"]["curve"]:
        last = curves["a"]["curve"][-1]
        lines.append("- How far base a is from converged: fine-tuned further with a fresh warm-up + cosine run, "
                     "unpruned, it reaches " + "; ".join(
                         f"mAP {r['mAP']:.2f} ({r['mAP'] - last['mAP']:+.2f}), rank-1 {r['rank1']:.2f} "
                         f"({r['rank1'] - last['rank1']:+.2f}) after {e} more epochs" for e, r in more)
                     + ": the stop rule found the plateau of its schedule, not the end of what longer training gives.")
    lines += ["", "| epoch | " + " | ".join(f"{d} mAP | {d} rank-1" for d in ("a", "b")) + " |",
              "|---|" + "---|---|" * 2]
    n = max((len(c["curve"]) for c in curves.values() if c), default=0)
    for i in range(n):
        cells = []
        for d in ("a", "b"):
            c = curves[d]["curve"] if curves[d] else []
            cells += [_fmt(c[i]["mAP"]), _fmt(c[i]["rank1"])] if i < len(c) else ["", ""]
        lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    lines.append("")

    # (a)
    ref = R.get("same_ref_s0")
    lines += ["## (a) Prune and fine-tune on the same domain (a)", "",
              "| criterion | schedule | target MACs | MACs ratio | params | mAP | rank-1 | rank-1 vs ref |",
              "|---|---|---|---|---|---|---|---|"]
    if ref:
        lines.append(f"| ref (unpruned, fine-tuned the same way) | - | 1.0 | 1.000 | {ref['params']:,} | "
                     f"{ref['mAP']:.2f} | {ref['rank1']:.2f} | 0 |")
    else:
        lines.append("| ref (unpruned, fine-tuned the same way) | - | 1.0 | not run | | | | |")
    for target in targets:
        for crit in crits:
            for sched in SCHEDULES:
                r = R.get(f"same_{crit}_{sched}_{tkey(target)}_s0")
                if r:
                    d = f"{r['rank1'] - ref['rank1']:+.2f}" if ref else ""
                    lines.append(f"| {crit} | {sched} | {target} | {r['macs_ratio']:.3f} | {r['params']:,} | "
                                 f"{r['mAP']:.2f} | {r['rank1']:.2f} | {d} |")
                else:
                    lines.append(f"| {crit} | {sched} | {target} | not run | | | | |")
    lines += ["", *summary_lines(R, "same", targets, crits), ""]

    # headline seeds and the claim
    t0 = targets[0]
    best = best_row(st, "same", t0)
    lines += [f"### Headline rows over {args.seeds} seeds (rank-1 mean ± sample std; seed = fine-tune batches, "
              "pruning draw and classifier init; the base is the same)", ""]
    ref_s = seed_stats(st, lambda s: f"same_ref_s{s}")
    lines.append(f"- ref, same domain: rank-1 {_ms(ref_s)}; mAP {_ms(ref_s, 'mAP')}")
    best_s = None
    if best:
        best_s = seed_stats(st, lambda s: f"same_{best['criterion']}_{best['schedule']}_{tkey(t0)}_s{s}")
        lines.append(f"- best at {t0}x MACs, same domain (chosen on seed 0): {best['criterion']} {best['schedule']}: "
                     f"rank-1 {_ms(best_s)}; mAP {_ms(best_s, 'mAP')}")
    lines += ["", "### The paper's claim", ""]
    if best_s and ref_s:
        gap = best_s["rank1"][0] - ref_s["rank1"][0]
        holds = gap >= -1.0
        lines.append(f"Best criterion and schedule at {t0}x MACs ({best['criterion']}, {best['schedule']}) vs the "
                     f"unpruned model fine-tuned the same way: {best_s['rank1'][0]:.2f} vs {ref_s['rank1'][0]:.2f} "
                     f"rank-1 (means over {best_s['n']} and {ref_s['n']} seeds): {gap:+.2f} points -> "
                     f"**{'holds' if holds else 'does NOT hold'} here** (claim: within 1 point)."
                     + ("" if min(best_s["n"], ref_s["n"]) > 1 else " (single seed: not all seeds finished)."))
        if min(best_s["n"], ref_s["n"]) > 1:
            sd = max(best_s["rank1"][1], ref_s["rank1"][1])
            lines.append(f"The seed spread (sample std up to {sd:.2f} points) is to be read against the 1-point margin.")
        brief.append(f"- Paper's claim (best criterion+schedule at {t0}x MACs within 1 rank-1 point of the unpruned "
                     f"model fine-tuned the same way, {args.ft_epochs}-epoch budget): "
                     f"**{'holds' if holds else 'does NOT hold'}**: {best['criterion']} {best['schedule']} "
                     f"{best_s['rank1'][0]:.2f} vs {ref_s['rank1'][0]:.2f} rank-1 ({gap:+.2f}, {best_s['n']} and "
                     f"{ref_s['n']} seeds).")
    else:
        lines.append("Not decided: the rows it needs have not finished.")
    lines.append("")

    lines += [f"### The fine-tune budget's weight (longer budgets than the study's {args.ft_epochs} epochs, seed 0)", "",
              "| fine-tune epochs | ref mAP | ref rank-1 | best pruned row | MACs ratio | mAP | rank-1 | rank-1 vs ref |",
              "|---|---|---|---|---|---|---|---|"]
    if best and ref:
        lines.append(f"| {args.ft_epochs} (the study) | {ref['mAP']:.2f} | {ref['rank1']:.2f} | {best['criterion']} "
                     f"{best['schedule']} {best['target']}x | {best['macs_ratio']:.3f} | {best['mAP']:.2f} | "
                     f"{best['rank1']:.2f} | {best['rank1'] - ref['rank1']:+.2f} |")
    budget_gaps = []
    for epochs in long_budgets(args):
        bref = R.get(f"budget_ref_ft{epochs}_s0")
        bbest = next((r for r in R.values() if r.get("study") == "budget" and r.get("criterion") != "none"
                      and r.get("key", "").endswith(f"_ft{epochs}_s0")), None)
        if bref and bbest:
            lines.append(f"| {epochs} | {bref['mAP']:.2f} | {bref['rank1']:.2f} | {bbest['criterion']} "
                         f"{bbest['schedule']} {bbest['target']}x | {bbest['macs_ratio']:.3f} | {bbest['mAP']:.2f} | "
                         f"{bbest['rank1']:.2f} | {bbest['rank1'] - bref['rank1']:+.2f} |")
            budget_gaps.append(f"{bbest['rank1'] - bref['rank1']:+.2f} rank-1 at {epochs} epochs")
        else:
            lines.append(f"| {epochs} | not run | | | | | | |")
    lines.append("")
    if budget_gaps:
        brief.append("- The same comparison with longer fine-tuning (seed 0; the claim allows -1): "
                     + ", ".join(budget_gaps) + ".")

    # (b)
    sref = R.get("shift_ref_s0")
    zs = R.get("shift_zero_shot")
    bb = curves["b"]["curve"][-1] if curves["b"] and curves["b"]["curve"] else None
    lines += ["## (b) Prune on the source domain (a), fine-tune on the target domain (b), evaluated on b", "",
              f"- base a on b without fine-tuning (the domain gap): "
              f"{'mAP %.2f, rank-1 %.2f' % (zs['mAP'], zs['rank1']) if zs else 'not run'}; base a on a: "
              f"{'mAP %.2f, rank-1 %.2f' % (curves['a']['curve'][-1]['mAP'], curves['a']['curve'][-1]['rank1']) if curves['a'] and curves['a']['curve'] else 'not run'}.",
              f"- base b trained on b (in-domain): {'mAP %.2f, rank-1 %.2f' % (bb['mAP'], bb['rank1']) if bb else 'not run'}.",
              "", "| criterion | schedule | target MACs | MACs ratio | mAP on b | rank-1 on b | gap left (rank-1 vs ref on b) |",
              "|---|---|---|---|---|---|---|"]
    if sref:
        lines.append(f"| ref (unpruned a, fine-tuned on b the same way) | - | 1.0 | 1.000 | {sref['mAP']:.2f} | "
                     f"{sref['rank1']:.2f} | 0 |")
    else:
        lines.append("| ref (unpruned a, fine-tuned on b the same way) | - | 1.0 | not run | | | |")
    for target in targets:
        for crit in crits:
            for sched in SCHEDULES:
                r = R.get(f"shift_{crit}_{sched}_{tkey(target)}_s0")
                if r:
                    d = f"{r['rank1'] - sref['rank1']:+.2f}" if sref else ""
                    lines.append(f"| {crit} | {sched} | {target} | {r['macs_ratio']:.3f} | {r['mAP']:.2f} | "
                                 f"{r['rank1']:.2f} | {d} |")
                else:
                    lines.append(f"| {crit} | {sched} | {target} | not run | | | |")
    bshift = best_row(st, "shift", t0)
    lines += ["", *summary_lines(R, "shift", targets, crits), ""]
    if bshift:
        sref_s = seed_stats(st, lambda s: f"shift_ref_s{s}")
        bs = seed_stats(st, lambda s: f"shift_{bshift['criterion']}_{bshift['schedule']}_{tkey(t0)}_s{s}")
        lines.append(f"Domain-shift headline over seeds: ref on b rank-1 {_ms(sref_s)}; best at {t0}x "
                     f"({bshift['criterion']} {bshift['schedule']}) rank-1 {_ms(bs)}"
                     + (f"; gap left {bs['rank1'][0] - sref_s['rank1'][0]:+.2f} points." if bs and sref_s else "."))
        if bs and sref_s:
            brief.append(f"- Domain shift (pruned on a, fine-tuned on b): best at {t0}x ({bshift['criterion']} "
                         f"{bshift['schedule']}) {bs['rank1'][0]:.2f} vs unpruned {sref_s['rank1'][0]:.2f} rank-1 on b: "
                         f"gap left {bs['rank1'][0] - sref_s['rank1'][0]:+.2f} points ({bs['n']} seeds); base a "
                         f"without fine-tuning scores {zs['rank1'] if zs else float('nan'):.2f} on b.")
        lines.append("")

    # (c)
    lines += ["## (c) Pruning while training vs training the pruned architecture from scratch", "",
              "| target MACs | prune while training (criterion) | MACs ratio | mAP | rank-1 | scratch, same architecture "
              "| mAP | rank-1 | pruning - scratch (rank-1) |", "|---|---|---|---|---|---|---|---|---|"]
    verdicts = []
    for target in targets:
        pw = next((r for r in R.values() if r.get("kind") == "prune-while-training" and r.get("target") == target
                   and r.get("seed") == 0), None)
        sc = R.get(f"scratch_{tkey(target)}_s0")
        if pw:
            cell = f"{pw['epochs']} epochs ({pw['criterion']}; {pw['plan']})"
            row = f"| {target} | {cell} | {pw['macs_ratio']:.3f} | {pw['mAP']:.2f} | {pw['rank1']:.2f} "
        else:
            row = f"| {target} | not run | | | "
        if sc:
            row += f"| {sc['epochs']} epochs | {sc['mAP']:.2f} | {sc['rank1']:.2f} "
        else:
            row += "| not run | | "
        if pw and sc:
            d = pw["rank1"] - sc["rank1"]
            row += f"| {d:+.2f} |"
            verdicts.append(f"at {target}x MACs pruning while training {'beats' if d > 0 else 'does NOT beat'} "
                            f"scratch: {pw['rank1']:.2f} vs {sc['rank1']:.2f} rank-1 ({d:+.2f}), mAP "
                            f"{pw['mAP']:.2f} vs {sc['mAP']:.2f}")
        else:
            row += "| |"
        lines.append(row)
    lines.append("")
    for target in targets:
        sc = R.get(f"scratch_{tkey(target)}_s0")
        b = best_row(st, "same", target)
        if sc and b and curves["a"]:
            verdicts.append(f"pruned from the converged base ({curves['a'].get('epochs')} + {args.ft_epochs} epochs, "
                            f"{b['criterion']} {b['schedule']}) at {target}x: {b['rank1']:.2f} rank-1 vs scratch "
                            f"({args.scratch_epochs} epochs) {sc['rank1']:.2f} (not the same epochs; for scale)")
    sl = R.get(f"scratch_long_{tkey(targets[0])}_s0")
    if sl:
        src = R.get(sl["architecture_of"])
        d = src["rank1"] - sl["rank1"]
        verdicts.append(f"equal MACs and equal epochs from the start ({sl['epochs']}): the converged base pruned at "
                        f"{targets[0]}x ({src['criterion']} {src['schedule']}) and fine-tuned "
                        f"{args.ft_epochs} epochs {'beats' if d > 0 else 'does NOT beat'} its architecture trained "
                        f"from scratch for {sl['epochs']} epochs: {src['rank1']:.2f} vs {sl['rank1']:.2f} rank-1 "
                        f"({d:+.2f}), mAP {src['mAP']:.2f} vs {sl['mAP']:.2f} (the pruned model's first "
                        f"{sl['epochs'] - args.ft_epochs} epochs ran on the unpruned network: equal epochs, not equal "
                        "compute)")
    lines += ["Verdict (seed 0, one run each):", ""] + ([f"- {v}." for v in verdicts] if verdicts else
                                                         ["- not decided (rows not run)."]) + [""]
    if verdicts:
        won = sum(" beats " in v for v in verdicts)
        lost = sum("does NOT beat" in v for v in verdicts)
        brief.append(f"- Pruning vs training the smaller network from scratch at equal MACs and epochs: pruning "
                     f"wins {won} of {won + lost} comparisons (section (c)).")

    # latency
    lines += ["## Latency-aware pruning (`edgereid compress --prune-latency-ms T --board B`)", "",
              f"On base a (no fine-tuning, `--quantize none`: the row checks the latency reached), T = "
              f"{LATENCY_FRACTION} x the base's predicted latency on the board (its latency table, int8 kernels).", "",
              "| board | predicted before (ms) | asked T (ms) | reached (ms) | reached / asked | target (reached <= T, "
              "within 10%) | MACs ratio | rank-1 before -> after (no fine-tune) | command |",
              "|---|---|---|---|---|---|---|---|---|"]
    for board in LATENCY_BOARDS:
        r = R.get(f"latency_{board.replace('-', '_')}")
        if r:
            ratio = r["reached_ms"] / r["asked_ms"]
            ok = 0.9 <= ratio <= 1.0
            brief.append(f"- Latency-aware pruning on {board}: asked {r['asked_ms']:.4g} ms, reached "
                         f"{r['reached_ms']:.4g} ms predicted ({ratio:.3f} of the target): "
                         f"{'met' if ok else 'MISSED'} (within 10%).")
            lines.append(f"| {board} | {r['predicted_before_ms']:.4g} | {r['asked_ms']:.4g} | {r['reached_ms']:.4g} | "
                         f"{ratio:.3f} | {'met' if ok else 'MISSED'} | {r['macs_ratio']:.3f} | "
                         f"{r['rank1_before']:.2f} -> {r['rank1']:.2f} | `{r['command']}` |")
        else:
            lines.append(f"| {board} | not run | | | | | | | |")
    lines += ["", "Unreachable target (below what the unprunable layers cost):", ""]
    for board in LATENCY_BOARDS:
        r = R.get(f"latency_unreachable_{board.replace('-', '_')}")
        if r:
            lines += [f"    $ {r['command']}", *[f"    {ln}" for ln in r["error_lines"]],
                      f"    (exit status {r['returncode']})", ""]
        else:
            lines += [f"- {board}: not run", ""]
    lines += ["## Plot", "", "![rank-1 vs MACs per criterion and schedule](pruning.png)", ""]
    lines[brief_at:brief_at] = ["## In brief", "", *(brief or ["- nothing decided yet (rows not run)"]), ""]
    report = Path(args.report)
    write_text(report, "\n".join(lines))
    write_plot(st, curves, report.with_suffix(".png"))


def write_plot(st, curves, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    crits = st.args.criteria.split(",")
    R = st.rows
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    colors = dict(zip(crits, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for ax, study, title in ((axes[0], "same", "(a) same domain (a)"), (axes[1], "shift", "(b) pruned on a, tuned on b")):
        ref = R.get(f"{study}_ref_s0")
        if ref:
            ax.axhline(ref["rank1"], color="k", lw=1, ls=":", label="unpruned, same fine-tune")
        for crit in crits:
            for sched, ls, mk in (("oneshot", "-", "o"), ("iter", "--", "s")):
                pts = sorted((r["macs_ratio"], r["rank1"]) for r in R.values() if r.get("study") == study
                             and r.get("criterion") == crit and r.get("schedule") == sched and r.get("seed") == 0)
                if ref:
                    pts.append((1.0, ref["rank1"]))
                if pts:
                    ax.plot(*zip(*sorted(pts)), ls=ls, marker=mk, color=colors[crit], label=f"{crit} {sched}")
        for r in R.values():
            if study == "same" and r.get("study") == "scratch" and r.get("seed") == 0:
                marker, color = {"scratch": ("*", "gray"), "scratch-long": ("X", "black")}.get(r["kind"], ("P", "purple"))
                ax.scatter([r["macs_ratio"]], [r["rank1"]], marker=marker, s=80, color=color, zorder=5,
                           label=f"{r['kind']} ({r['epochs']} ep)")
        ax.set_title(title)
        ax.set_xlabel("MACs / unpruned MACs")
        ax.set_ylabel("rank-1 (%)")
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles))
        ax.legend(uniq.values(), uniq.keys(), fontsize=6, ncol=2)
    ax = axes[2]
    for d, c in curves.items():
        if c and c["curve"]:
            ax.plot([p["epoch"] for p in c["curve"]], [p["rank1"] for p in c["curve"]], marker=".", label=f"base {d} rank-1")
            ax.plot([p["epoch"] for p in c["curve"]], [p["mAP"] for p in c["curve"]], ls="--", label=f"base {d} mAP")
    ax.set_title("base training (evaluated on its own domain)")
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--data-a", default="synthetic", help="dataset spec of domain a (the source)")
    ap.add_argument("--data-b", default="synthetic-b", help="dataset spec of domain b (the target)")
    ap.add_argument("--size", default="64x32", help="input HxW")
    ap.add_argument("--p", type=int, default=8)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--base-epochs", type=int, default=40, help="most epochs of base training (cosine horizon)")
    ap.add_argument("--ft-epochs", type=int, default=3, help="the fine-tune budget, everywhere")
    ap.add_argument("--long-ft-epochs", default="12,30",
                    help="the budget check: ref and the best row at the first target fine-tuned this many epochs "
                         "(comma list; empty: skip)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--iter-steps", type=int, default=4)
    ap.add_argument("--scratch-epochs", type=int, default=12, help="(c): total epochs of both arms")
    ap.add_argument("--no-scratch-long", dest="scratch_long", action="store_false",
                    help="skip (c)'s long arm: the best pruned architecture trained from scratch for base + fine-tune epochs")
    ap.add_argument("--criteria", default="l1,l2,fpgm,taylor,random")
    ap.add_argument("--targets", default="0.5,0.3")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--max-minutes", type=float, default=None, help="start no new row after this many minutes")
    ap.add_argument("--work", default=str(REPO / "out/prune_study"))
    ap.add_argument("--report", default=str(REPO / "docs/results/pruning.md"))
    ap.add_argument("--report-only", action="store_true", help="write the page from the finished rows")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    st = Study(args)
    if not args.report_only:
        run_study(st)
    write_page(st)
    log(f"wrote {args.report} ({len(st.rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
