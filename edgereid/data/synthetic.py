"""The embedded default dataset: seeded procedural pedestrians in real on-disk layouts.

`synthesize(root, seed)` writes, under `root`:

    market1501/bounding_box_train|query|bounding_box_test/   visible only, 6 cameras,
        Market-1501 names (0002_c1s1_000128_00.jpg), junk (-1_...) and distractors (0000_...)
    sysu/cam1..cam6/<pid>/<0001.jpg>, sysu/exp/{train,val,test}_id.txt
        SYSU-MM01 layout, cameras 3 and 6 infrared; visible cameras 1, 2, 4, 5 are the
        same cameras as in the Market layout
    manifest.json   seed, parameters and counts

Every image has its own RNG derived from (seed, layout, pid, camera, index), so the same
seed gives the same bytes (JPEG with fixed settings). The set is built in a sibling
`.root.tmp-*` folder and renamed into place, so a reader never sees half a dataset; an
existing `root` is replaced (overwrite=True, `--force`) only while it holds nothing but
an earlier synthetic set (its .edgereid-files.json lists what edgereid wrote).
See `edgereid.data.render` for what makes identities differ.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from edgereid.atomic import output_dir
from edgereid.data.render import DOMAINS, Identity, render, sample_camera, sample_identity
from edgereid.errors import DatasetError

GENERATOR_VERSION = 3
DEFAULT_ROOT = Path("data/synthetic")
DEFAULT_ROOT_B = Path("data/synthetic-b")   # the second camera network (domain "b")
NUM_CAMS = 6
SYSU_INFRARED = (3, 6)
JPEG_SETTINGS = {"format": "JPEG", "quality": 92, "subsampling": 0, "optimize": False}
_MARKET, _SYSU, _DISTRACTOR, _JUNK, _DOMAIN = 1, 2, 3, 4, 5  # RNG stream tags


def _spread(rng, n_images: int, cams: list[int]) -> dict[int, int]:
    """At least one image per camera, the rest at random."""
    counts = {c: 1 for c in cams}
    for c in rng.choice(cams, max(n_images - len(cams), 0)):
        counts[int(c)] += 1
    return counts


def plan_market(base, train_pids, test_pids, images_per_id, num_distractors, num_junk):
    """(split, filename, pid, camid, kind, rng key) of every image of the Market layout
    (`base`: the domain's RNG root, `_domain_seed`)."""
    items = []
    for pid in sorted(train_pids) + sorted(test_pids):
        rng = np.random.default_rng([*base, _MARKET, pid])
        cams = sorted(int(c) for c in rng.choice(np.arange(1, NUM_CAMS + 1), rng.integers(2, NUM_CAMS + 1), replace=False))
        n = max(images_per_id + int(rng.integers(-3, 4)), len(cams) + 1)
        query_cams = set(int(c) for c in rng.choice(cams, 2, replace=False)) if pid in test_pids else set()
        j = 0
        for cam, count in _spread(rng, n, cams).items():
            for k in range(count):
                split = "bounding_box_train" if pid in train_pids else (
                    "query" if cam in query_cams and k == 0 else "bounding_box_test")
                name = f"{pid:04d}_c{cam}s1_{pid * 64 + j:06d}_00.jpg"
                items.append((split, name, pid, cam, "person", (_MARKET, pid, cam, j)))
                j += 1
    rng = np.random.default_rng([*base, _DISTRACTOR])
    for i in range(num_distractors):
        cam = int(rng.integers(1, NUM_CAMS + 1))
        items.append(("bounding_box_test", f"0000_c{cam}s1_{900000 + i:06d}_00.jpg", 0, cam, "distractor", (_DISTRACTOR, i)))
    for i in range(num_junk):
        cam = int(rng.integers(1, NUM_CAMS + 1))
        items.append(("bounding_box_test", f"-1_c{cam}s1_{950000 + i:06d}_00.jpg", -1, cam, "junk", (_JUNK, i)))
    return items


def plan_sysu(base, pids, images_per_id):
    items = []
    for pid in sorted(pids):
        rng = np.random.default_rng([*base, _SYSU, pid])
        ir = [int(c) for c in rng.choice(SYSU_INFRARED, rng.integers(1, 3), replace=False)]
        rgb = [int(c) for c in rng.choice([1, 2, 4, 5], rng.integers(2, 5), replace=False)]
        n = max(images_per_id + int(rng.integers(-3, 4)), len(ir) + len(rgb))
        # about a third of a person's images are infrared, as in SYSU-MM01
        counts = _spread(rng, n // 3, sorted(ir)) | _spread(rng, n - n // 3, sorted(rgb))
        for cam, count in sorted(counts.items()):
            for k in range(count):
                items.append((f"cam{cam}/{pid:04d}", f"{k + 1:04d}.jpg", pid, cam, "person", (_SYSU, pid, cam, k)))
    return items


def _write_image(path: Path, pixels: np.ndarray):
    Image.fromarray(pixels).save(path, **JPEG_SETTINGS)


def _ids_line(ids) -> str:
    return ",".join(str(i) for i in sorted(ids)) + "\n"


def _domain_seed(seed: int, domain: str) -> list[int]:
    """The RNG root of a domain: domain "a" keeps the original streams (its bytes are the
    default set's); any other draws its own cameras, identities and images."""
    if domain not in DOMAINS:
        raise DatasetError(f"synthetic: unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}")
    return [seed] if domain == "a" else [seed, _DOMAIN, sorted(DOMAINS).index(domain)]


def synthesize(root=DEFAULT_ROOT, seed: int = 0, num_ids: int = 600, images_per_id: int = 16,
               num_distractors: int | None = None, num_junk: int | None = None,
               overwrite: bool = False, progress: bool = True, domain: str = "a") -> Path:
    """Generate the synthetic set at `root` (half of `num_ids` for training, half for test).

    `domain` picks the camera network (`edgereid.data.render.DOMAINS`): "b" is another
    one with other viewpoints, light, colour casts, scenes and blur, and new identities.

    Raises DatasetError if `root` exists and `overwrite` is false, or if it holds anything
    that edgereid did not write there (named in the message; nothing is touched).
    """
    root = Path(root)
    base = _domain_seed(seed, domain)
    style = DOMAINS[domain]
    if num_ids < 4 or images_per_id < 4 or images_per_id > 60:
        raise DatasetError(f"synthetic: need num_ids >= 4 and 4 <= images_per_id <= 60, got {num_ids}, {images_per_id}")
    if num_ids > 9999:
        raise DatasetError(f"synthetic: num_ids {num_ids} does not fit 4-digit pids (max 9999)")
    if root.exists() and not overwrite:
        raise DatasetError(f"synthetic: {root} already exists (pass overwrite=True, or --force on the command line, to replace it)")
    num_test = num_ids // 2
    num_distractors = num_test if num_distractors is None else num_distractors
    num_junk = num_test // 3 if num_junk is None else num_junk

    rng = np.random.default_rng([*base, 0])
    visible_cams = [sample_camera(rng, infrared=False, style=style) for _ in range(NUM_CAMS)]
    infrared_cams = [sample_camera(rng, infrared=True, style=style) for _ in SYSU_INFRARED]
    sysu_cams = {c: visible_cams[c - 1] for c in (1, 2, 4, 5)} | dict(zip(SYSU_INFRARED, infrared_cams))
    identities = {pid: sample_identity(rng) for pid in range(1, num_ids + 1)}
    order = rng.permutation(np.arange(1, num_ids + 1))
    test_pids = set(int(p) for p in order[:num_test])
    train_pids = set(int(p) for p in order[num_test:])
    val_pids = set(int(p) for p in rng.choice(sorted(train_pids), max(len(train_pids) // 10, 1), replace=False))

    market = plan_market(base, train_pids, test_pids, images_per_id, num_distractors, num_junk)
    sysu = plan_sysu(base, train_pids | test_pids, images_per_id)

    # --force replaces `root` only while it holds nothing but an earlier synthetic set
    # (edgereid.atomic.output_dir names anything else and leaves it alone).
    with output_dir(root, DatasetError, legacy=_legacy_owner(root), what="synthetic: output folder") as tmp:
        jobs = [("market1501", item) for item in market] + [("sysu", item) for item in sysu]
        for folder in sorted({(layout, item[0]) for layout, item in jobs}):
            (tmp / folder[0] / folder[1]).mkdir(parents=True)
        for layout, (folder, name, pid, cam, kind, key) in tqdm(jobs, desc=f"synthesizing {root}", disable=not progress,
                                                                unit="img", mininterval=1.0):
            image_rng = np.random.default_rng([*base, *key])
            if kind == "person":
                person: Identity = identities[pid]
            else:  # distractors and junk are people from outside the id set
                person = sample_identity(image_rng)
            cam_model = visible_cams[cam - 1] if layout == "market1501" else sysu_cams[cam]
            _write_image(tmp / layout / folder / name, render(person, cam_model, image_rng, junk=kind == "junk"))
        exp = tmp / "sysu" / "exp"
        exp.mkdir(parents=True)
        (exp / "train_id.txt").write_text(_ids_line(train_pids - val_pids))
        (exp / "val_id.txt").write_text(_ids_line(val_pids))
        (exp / "test_id.txt").write_text(_ids_line(test_pids))
        manifest = {
            "generator": "edgereid.data.synthetic", "version": GENERATOR_VERSION, "seed": seed, "domain": domain,
            "num_ids": num_ids, "images_per_id": images_per_id, "num_distractors": num_distractors,
            "num_junk": num_junk, "image_size": [128, 64], "jpeg": {k: v for k, v in JPEG_SETTINGS.items()},
            "market1501": {"train_ids": len(train_pids), "test_ids": len(test_pids),
                           "images": {s: sum(1 for m in market if m[0] == s)
                                      for s in ("bounding_box_train", "query", "bounding_box_test")}},
            "sysu": {"train_ids": len(train_pids - val_pids), "val_ids": len(val_pids),
                     "test_ids": len(test_pids), "infrared_cams": list(SYSU_INFRARED), "images": len(sysu)},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return root


# Names of every file a synthetic set holds: what a set written before edgereid kept a
# list of its files (.edgereid-files.json) may contain and --force may replace.
_SET_FILES = re.compile(r"manifest\.json|sysu/exp/(train|val|test)_id\.txt|sysu/cam[1-6]/\d{4}/\d{4}\.jpg|"
                        r"market1501/(bounding_box_train|query|bounding_box_test)/(-1|\d{4})_c[1-6]s1_\d{6}_00\.jpg")


def _legacy_owner(root: Path):
    """Recognises a synthetic set's own files in a set without a file list (see output_dir)."""
    manifest = read_manifest(root)
    if not (isinstance(manifest, dict) and manifest.get("generator") == "edgereid.data.synthetic"):
        return None
    return lambda rel: _SET_FILES.fullmatch(rel) is not None


def read_manifest(root) -> dict | None:
    path = Path(root) / "manifest.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def ensure_synthetic(root=DEFAULT_ROOT, seed: int | None = None, progress: bool = True, domain: str = "a") -> Path:
    """Generate the set of `domain` at `root` if it is missing or from an older generator.

    `seed` None takes the set at `root` whatever its seed (seed 0 when generating); an
    explicit seed that differs from the existing set's is an error, not silently ignored,
    and so is a set of another domain.
    """
    root = Path(root)

    def current():
        manifest = read_manifest(root)
        if manifest is None or manifest.get("version") != GENERATOR_VERSION:
            return None
        if manifest.get("domain", "a") != domain:
            raise DatasetError(f"synthetic: {root} holds domain {manifest.get('domain', 'a')!r}, not {domain!r}; "
                               "use another folder (the default for domain b is data/synthetic-b)")
        if seed is not None and manifest.get("seed") != seed:
            raise DatasetError(f"synthetic: {root} was generated with seed {manifest.get('seed')}, not {seed}; "
                               "use another folder or regenerate it with `edgereid data synth --force`")
        return root

    if current():
        return root
    stale = read_manifest(root) is not None
    if root.exists() and not stale:
        raise DatasetError(f"synthetic: {root} exists but has no manifest.json; not a synthetic set, not touching it")
    try:
        return synthesize(root, seed=seed or 0, overwrite=stale, progress=progress, domain=domain)
    except (OSError, DatasetError):
        if current():  # another process renamed its copy into place first
            return root
        raise
