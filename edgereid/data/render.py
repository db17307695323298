"""Procedural pedestrians: one seeded identity seen by one seeded camera -> a 128x64 crop.

A person is first drawn as a map of part labels (skin, hair, top, top pattern, bottom,
shoes, hat, bag, logo, strap, occluder) from their body shape and the view; the map is
then coloured either by the identity's clothing colours under the camera's light
(visible) or by the heat of each part (infrared: skin hot, clothes by material, bags
cold; hue plays no part). Everything is numpy on whole images, no per-pixel loops.

What tells identities apart (and survives both modalities): body shape (height, width,
head size, leg length), top pattern (plain, stripes, checks, logo), lower garment
(trousers, shorts, skirt), sleeves, long hair, hat and bag. Colours come from a small
shared palette, so many identities wear the same colours.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageFilter

HEIGHT, WIDTH = 128, 64
_YY, _XX = (g.astype(np.float32) + 0.5 for g in np.mgrid[0:HEIGHT, 0:WIDTH])

# part labels of the label map (0 = background)
BG, SKIN, HAIR, TOP, TOP_PATTERN, BOTTOM, SHOES, HAT, BAG, LOGO, STRAP, OCCLUDER = range(12)
NUM_LABELS = 12

# Common clothing colours, weighted towards dark and neutral ones as in street scenes:
# with a few hundred identities many share the same top/bottom colours.
PALETTE = np.array([
    (28, 28, 30), (68, 68, 74), (125, 125, 128), (215, 215, 210), (32, 42, 88),
    (62, 92, 158), (165, 42, 44), (58, 108, 62), (188, 168, 128), (108, 74, 50),
], dtype=np.float32)
PALETTE_WEIGHTS = np.array([0.2, 0.12, 0.1, 0.12, 0.1, 0.1, 0.07, 0.06, 0.07, 0.06])
SKIN_TONES = np.array([(224, 188, 160), (198, 150, 118), (150, 104, 76), (96, 66, 50)], np.float32)
HAIR_COLOURS = np.array([(22, 18, 16), (60, 40, 28), (120, 90, 60), (170, 160, 150)], np.float32)

PATTERNS = ("plain", "hstripes", "vstripes", "checks", "logo")
LOWERS = ("trousers", "shorts", "skirt")
BAGS = ("none", "backpack", "shoulder", "handbag")
VIEWS = ("front", "back", "side")


@dataclass(frozen=True)
class Identity:
    height: float        # body height in px at camera scale 1
    shoulder: float      # shoulder half-width / height
    hip: float           # hip half-width / shoulder half-width
    head: float          # head radius / height
    leg: float           # leg length / height
    top_colour: tuple
    pattern: str
    pattern_colour: tuple
    stripe_period: float
    logo_shape: int      # 0 square, 1 disc, 2 bar
    long_sleeves: bool
    lower: str
    bottom_colour: tuple
    skin: tuple
    hair_colour: tuple
    long_hair: bool
    hat: bool
    hat_colour: tuple
    bag: str
    bag_colour: tuple
    bag_side: int        # -1 left, +1 right
    shoe_colour: tuple
    # infrared: emitted brightness of each material in [0, 1]
    skin_heat: float
    top_heat: float
    pattern_heat: float
    bottom_heat: float
    bag_heat: float


@dataclass(frozen=True)
class Camera:
    infrared: bool
    view_probs: tuple    # P(front), P(back), P(side)
    scale: float
    gain: float
    cast: tuple          # per-channel multipliers (visible) or (1, 1, 1)
    gamma: float
    blur: float          # Gaussian radius in px
    noise: float         # std of additive noise, 0..255 scale
    occlusion: float     # probability that something covers part of the person
    occluder_colour: tuple
    background: np.ndarray  # (HEIGHT + 32, SCENE_WIDTH + 32, 3) float32, 0..255


def _palette_colour(rng, jitter=14.0):
    base = PALETTE[rng.choice(len(PALETTE), p=PALETTE_WEIGHTS)]
    return tuple(np.clip(base + rng.uniform(-jitter, jitter, 3), 0, 255).round(1).tolist())


# Near-infrared reflectance of a dyed fabric: SYSU-MM01's infrared cameras are active
# near-infrared ones, where red dyes reflect most and blue ones least. A weighted grey
# that is not the visible luminance: hue is lost, brightness order mostly kept.
NIR_WEIGHTS = np.array([0.5, 0.35, 0.15], np.float32)


def _nir_reflectance(colour) -> float:
    return float(np.dot(np.asarray(colour, np.float32), NIR_WEIGHTS)) / 255.0


def _fabric_heat(rng, colour) -> float:
    """Infrared brightness of a garment: its dye's near-infrared reflectance and a
    smaller material term (one uniform draw).

    The hue never enters, so colour cannot be read back from an infrared image, but
    which garment is lighter than which survives, as on real infrared footage
    (generator v2 drew most of it at random, which left the cross-modal task at chance).
    """
    return 0.12 + 0.72 * _nir_reflectance(colour) + 0.16 * (float(rng.random()) - 0.5)


def _accessory_heat(colour, material: float) -> float:
    """Bags are cold (not worn against the body): their reflectance, dimmed."""
    return max(0.03, 0.05 + 0.5 * _nir_reflectance(colour) + material - 0.19)


def sample_identity(rng: np.random.Generator) -> Identity:
    pattern = PATTERNS[rng.choice(len(PATTERNS), p=[0.3, 0.2, 0.15, 0.15, 0.2])]
    lower = LOWERS[rng.choice(3, p=[0.6, 0.25, 0.15])]
    bag = BAGS[rng.choice(4, p=[0.35, 0.3, 0.2, 0.15])]
    top_colour, pattern_colour, bottom_colour = _palette_colour(rng), _palette_colour(rng), _palette_colour(rng)
    top_heat = _fabric_heat(rng, top_colour)
    pattern_heat = _fabric_heat(rng, pattern_colour)
    if abs(pattern_heat - top_heat) < 0.1:  # a pattern is woven from another material: keep it visible in IR
        pattern_heat = top_heat + (0.1 if pattern_heat >= top_heat else -0.1)
    person = Identity(
        height=float(rng.uniform(98, 120)),
        shoulder=float(rng.uniform(0.105, 0.16)),
        hip=float(rng.uniform(0.72, 1.0)),
        head=float(rng.uniform(0.052, 0.075)),
        leg=float(rng.uniform(0.41, 0.53)),
        top_colour=top_colour,
        pattern=pattern,
        pattern_colour=pattern_colour,
        stripe_period=float(rng.uniform(4.0, 9.0)),
        logo_shape=int(rng.integers(3)),
        long_sleeves=bool(rng.random() < 0.6),
        lower=lower,
        bottom_colour=bottom_colour,
        skin=tuple(SKIN_TONES[rng.integers(len(SKIN_TONES))].tolist()),
        hair_colour=tuple(HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))].tolist()),
        long_hair=bool(rng.random() < 0.3),
        hat=bool(rng.random() < 0.25),
        hat_colour=_palette_colour(rng),
        bag=bag,
        bag_colour=_palette_colour(rng),
        bag_side=int(rng.choice([-1, 1])),
        shoe_colour=tuple(np.clip(PALETTE[rng.integers(3)] + rng.uniform(-10, 10, 3), 0, 255).tolist()),
        skin_heat=float(rng.uniform(0.82, 0.97)),
        top_heat=top_heat,
        pattern_heat=float(pattern_heat),
        bottom_heat=_fabric_heat(rng, bottom_colour),
        bag_heat=float(rng.uniform(0.08, 0.3)),  # the bag's material; its dye is added below
    )
    return replace(person, bag_heat=_accessory_heat(person.bag_colour, person.bag_heat))


SCENE_WIDTH = 5 * WIDTH  # a camera sees a wide scene; each crop shows one part of it


@dataclass(frozen=True)
class CameraStyle:
    """The distribution a camera network's cameras are drawn from (a synthetic *domain*).

    Domain "a" is the default set's (indoor-ish scenes, mild casts); domain "b" is another
    camera network: mostly side views from farther away, dim sodium-lamp light (strong
    orange cast, higher gamma), green-grey outdoor scenes, more blur and noise. A model
    trained on one loses accuracy on the other, as across real camera networks.
    """
    view_alpha: tuple = (1.0, 1.0, 1.0)      # Dirichlet concentration of P(front), P(back), P(side)
    cast: tuple = (0.88, 1.12)               # visible: per-channel multiplier range ...
    cast_bias: tuple = (1.0, 1.0, 1.0)       # ... times this fixed tint of the network's lamps
    gamma: tuple = (0.85, 1.15)
    gain: tuple = (0.8, 1.2)
    blur: tuple = (0.0, 1.0)
    noise: tuple = (2.0, 7.0)
    scale: tuple = (0.88, 1.04)
    occlusion: tuple = (0.05, 0.35)
    scene_tint: tuple = (1.0, 1.0, 1.0)      # visible backgrounds' surfaces times this
    scene_level: tuple = (60.0, 200.0)       # visible backgrounds' surface brightness range


DOMAINS = {
    "a": CameraStyle(),
    "b": CameraStyle(view_alpha=(0.6, 0.6, 3.0), cast_bias=(1.18, 1.0, 0.72), gamma=(1.1, 1.45), gain=(0.6, 0.95),
                     blur=(0.6, 1.6), noise=(5.0, 11.0), scale=(0.78, 0.92), occlusion=(0.15, 0.45),
                     scene_tint=(0.85, 1.05, 0.8), scene_level=(30.0, 140.0)),
}


def _background(rng, infrared: bool, style: CameraStyle = DOMAINS["a"]) -> np.ndarray:
    """A camera's scene: wall segments and floor, doors/windows, tiles and clutter.

    The scene is several crops wide and its segments are drawn from the same
    distribution for every camera, so two crops of one camera can differ as much as
    crops of two cameras (the background must not identify the camera).
    """
    h, w = HEIGHT + 32, SCENE_WIDTH + 32
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if infrared:  # cold scene, a few warm objects (lamps, radiators)
        surface = lambda: np.full(3, rng.uniform(0.08, 0.35), np.float32)  # noqa: E731
        colour = lambda: np.full(3, rng.uniform(0.05, 0.8), np.float32)  # noqa: E731
    else:
        # walls and floors are greyish with a tint; clutter can be any colour
        tint = np.asarray(style.scene_tint, np.float32)
        surface = lambda: (rng.uniform(*style.scene_level) * (1 + rng.uniform(-0.1, 0.1, 3)) * tint  # noqa: E731
                           ).astype(np.float32)
        colour = lambda: (0.5 * rng.uniform(20, 235, 3) + 0.5 * rng.uniform(20, 235)).astype(np.float32)  # noqa: E731
    img = np.empty((h, w, 3), np.float32)
    horizon = rng.uniform(0.45, 0.8) * h
    x0 = 0.0
    while x0 < w:
        x1 = x0 + rng.uniform(30, 90)
        seg = (xx >= x0) & (xx < x1)
        img[seg & (yy < horizon)] = surface()
        img[seg & (yy >= horizon)] = surface()
        x0 = x1
    for _ in range(rng.integers(12, 30)):  # doors, windows, shelves, parked things
        y0, x0 = rng.uniform(0, h), rng.uniform(-10, w)
        bh, bw = rng.uniform(8, 60), rng.uniform(4, 40)
        box = (yy >= y0) & (yy < y0 + bh) & (xx >= x0) & (xx < x0 + bw)
        img[box] = colour()
    tile = rng.uniform(6, 16)
    lines = (yy > horizon) & (np.mod(yy - horizon, tile) < 1.0)
    img[lines] *= 0.8
    scale = 1.0 if infrared else 255.0
    img += rng.normal(0, 0.04 * scale, (h, w, 1)).astype(np.float32)  # texture grain
    return img * (255.0 if infrared else 1.0)


def sample_camera(rng: np.random.Generator, infrared: bool = False, style: CameraStyle = DOMAINS["a"]) -> Camera:
    views = rng.dirichlet(list(style.view_alpha))
    if infrared:  # thermal cameras do not see the lamps: the same in every domain
        cast, gamma = (1.0, 1.0, 1.0), float(rng.uniform(0.8, 1.25))
        gain, blur, noise = float(rng.uniform(0.8, 1.1)), float(rng.uniform(0.7, 1.4)), float(rng.uniform(4, 9))
    else:
        cast = tuple((rng.uniform(*style.cast, 3) * np.asarray(style.cast_bias)).round(3).tolist())
        gamma = float(rng.uniform(*style.gamma))
        gain, blur, noise = (float(rng.uniform(*style.gain)), float(rng.uniform(*style.blur)),
                             float(rng.uniform(*style.noise)))
    return Camera(
        infrared=infrared,
        view_probs=tuple(views.tolist()),
        scale=float(rng.uniform(*style.scale)),
        gain=gain, cast=cast, gamma=gamma, blur=blur, noise=noise,
        occlusion=float(rng.uniform(*style.occlusion)),
        occluder_colour=tuple(rng.uniform(20, 235, 3).tolist()),
        background=_background(rng, infrared, style),
    )


def _band(y0, y1):
    return (_YY >= y0) & (_YY < y1)


def _segment(x_top, x_bottom, y0, y1, half_top, half_bottom):
    """Mask of a vertical limb: a trapezoid whose centre moves from x_top to x_bottom."""
    u = np.clip((_YY - y0) / max(y1 - y0, 1e-3), 0, 1)
    centre = x_top + (x_bottom - x_top) * u
    half = half_top + (half_bottom - half_top) * u
    return _band(y0, y1) & (np.abs(_XX - centre) <= half)


def _box(x0, x1, y0, y1):
    return _band(y0, y1) & (_XX >= x0) & (_XX < x1)


def draw_labels(p: Identity, view: str, facing: int, scale: float, cx: float, foot_y: float,
                stride: float) -> tuple[np.ndarray, np.ndarray]:
    """Part-label map (uint8, HxW) and a shading map for one pose of one identity."""
    lab = np.zeros((HEIGHT, WIDTH), np.uint8)
    total = p.height * scale
    top_y = foot_y - total
    hr = p.head * total
    head_cy = top_y + hr
    shoulder_y = head_cy + hr + 0.025 * total
    leg_len = p.leg * total
    hip_y = foot_y - leg_len
    torso_h = hip_y - shoulder_y
    side = view == "side"
    sw = p.shoulder * total * (0.62 if side else 1.0)
    hw = sw * (p.hip if not side else 0.95)
    aw = max(0.27 * p.shoulder * total, 2.2)
    back = view == "back"

    def paint(mask, label):
        lab[mask] = label

    # long hair hangs behind the head: painted before the body unless seen from behind
    hair_fall = _box(cx - 0.85 * hr - (facing * 0.4 * hr if side else 0), cx + 0.85 * hr - (facing * 0.4 * hr if side else 0),
                     head_cy, shoulder_y + 0.3 * torso_h) if p.long_hair else None
    if hair_fall is not None and not back:
        paint(hair_fall, HAIR)
    # backpack from the side sticks out behind the torso
    if p.bag == "backpack" and side:
        bx = cx - facing * (sw + 0.35 * p.shoulder * total)
        paint(_box(bx - 0.4 * p.shoulder * total, bx + 0.4 * p.shoulder * total,
                   shoulder_y + 0.05 * torso_h, shoulder_y + 0.8 * torso_h), BAG)

    # legs
    u_shoe = foot_y - 0.06 * total
    if side:
        spread = stride * 0.22 * leg_len
        legs = [(cx, cx + spread), (cx, cx - spread)]
    else:
        spread = hw * 0.5 + abs(stride) * 1.5
        legs = [(cx - hw * 0.5, cx - spread), (cx + hw * 0.5, cx + spread)]
    lhw = max(hw * 0.46, 2.0)
    knee_y = hip_y + 0.45 * leg_len
    for x_top, x_bot in legs:
        leg = _segment(x_top, x_bot, hip_y, foot_y, lhw, lhw * 0.72)
        paint(leg & (_YY >= u_shoe), SHOES)
        garment_end = u_shoe if p.lower == "trousers" else knee_y
        paint(leg & (_YY < garment_end), BOTTOM)
        paint(leg & (_YY >= garment_end) & (_YY < u_shoe), SKIN)
        # shoes point forward in side view
        if side:
            paint(_box(min(x_bot, x_bot + facing * 1.6 * lhw), max(x_bot, x_bot + facing * 1.6 * lhw),
                       u_shoe + 0.02 * total, foot_y), SHOES)
    paint(_box(cx - hw, cx + hw, hip_y - 1, hip_y + 0.1 * leg_len), BOTTOM)
    if p.lower == "skirt":
        paint(_segment(cx, cx, hip_y - 1, knee_y, hw, hw * 1.45), BOTTOM)

    # torso with top pattern
    torso = _segment(cx, cx, shoulder_y, hip_y, sw, hw)
    torso &= ~((_YY < shoulder_y + 0.06 * torso_h) & (np.abs(_XX - cx) > sw * 0.8))  # round shoulders
    arms = np.zeros_like(torso)
    sleeves_end = hip_y if p.long_sleeves else shoulder_y + 0.4 * torso_h
    hand_y = hip_y + 0.07 * total
    if side:
        swing = -stride * 0.3 * torso_h
        arm = _segment(cx, cx + swing, shoulder_y + 1, hand_y, aw * 0.55, aw * 0.45)
        arms |= arm
        hand_x = cx + swing
        hand_xs = [hand_x]
    else:
        hand_xs = []
        for s in (-1, 1):
            ax = cx + s * (sw + aw * 0.45)
            arms |= _segment(ax, ax + s * 0.6, shoulder_y + 0.04 * torso_h, hand_y, aw * 0.5, aw * 0.42)
            hand_xs.append(ax + s * 0.6)
    clothed = torso | (arms & (_YY < sleeves_end))
    paint(clothed, TOP)
    paint(arms & (_YY >= sleeves_end), SKIN)
    if p.pattern in ("hstripes", "checks"):
        stripe = np.mod(_YY - shoulder_y, p.stripe_period * scale) < 0.5 * p.stripe_period * scale
        if p.pattern == "checks":
            stripe ^= np.mod(_XX - cx + 64, p.stripe_period * scale) < 0.5 * p.stripe_period * scale
        paint(clothed & stripe, TOP_PATTERN)
    elif p.pattern == "vstripes":
        paint(clothed & (np.mod(_XX - cx + 64, p.stripe_period * scale) < 0.5 * p.stripe_period * scale), TOP_PATTERN)
    elif p.pattern == "logo" and view == "front":
        ly, half = shoulder_y + 0.35 * torso_h, 0.42 * sw
        if p.logo_shape == 0:
            logo = _box(cx - half, cx + half, ly - half, ly + half)
        elif p.logo_shape == 1:
            logo = (_XX - cx) ** 2 + (_YY - ly) ** 2 <= half ** 2
        else:
            logo = _box(cx - sw, cx + sw, ly - 0.3 * half, ly + 0.3 * half)
        paint(logo & torso, LOGO)

    # head, hair, hat
    head = ((_XX - cx) / (0.82 * hr)) ** 2 + ((_YY - head_cy) / hr) ** 2 <= 1.0
    paint(head | _box(cx - 0.35 * hr, cx + 0.35 * hr, head_cy, shoulder_y + 1), SKIN)
    if back:
        hair = head & (_YY < head_cy + 0.6 * hr)
    elif side:
        hair = head & ((_YY < head_cy - 0.3 * hr) | ((_XX - cx) * facing < -0.15 * hr))
    else:
        hair = head & ((_YY < head_cy - 0.4 * hr) | (np.abs(_XX - cx) > 0.62 * hr))
    paint(hair, HAIR)
    if hair_fall is not None and back:
        paint(hair_fall & ~head | hair_fall & (_YY >= head_cy), HAIR)
    if p.hat:
        paint(head & (_YY < head_cy - 0.25 * hr), HAT)
        brim_x = (cx - hr, cx + hr) if not side else sorted((cx, cx + facing * 1.6 * hr))
        paint(_box(brim_x[0], brim_x[1], head_cy - 0.4 * hr, head_cy - 0.15 * hr), HAT)

    # bags
    bag_w = 0.75 * p.shoulder * total
    if p.bag == "backpack":
        if back:
            paint(_box(cx - 0.72 * sw, cx + 0.72 * sw, shoulder_y + 0.05 * torso_h, shoulder_y + 0.8 * torso_h), BAG)
        elif not side:
            for s in (-1, 1):
                paint(_box(cx + s * 0.55 * sw - 1.1, cx + s * 0.55 * sw + 1.1, shoulder_y, shoulder_y + 0.6 * torso_h), STRAP)
        else:
            paint(_box(cx - 1.0, cx + 1.0, shoulder_y, shoulder_y + 0.6 * torso_h), STRAP)
    elif p.bag == "shoulder":
        s = p.bag_side * (-1 if back else 1)
        bx = cx + s * (hw + 0.2 * bag_w) if not side else cx - facing * 0.2 * bag_w
        y0 = hip_y - 0.15 * torso_h
        if not side:
            # strap from the opposite shoulder down to the bag
            t = np.clip((_YY - shoulder_y) / max(y0 - shoulder_y, 1e-3), 0, 1)
            strap_x = cx - s * 0.7 * sw + (bx - (cx - s * 0.7 * sw)) * t
            paint(_band(shoulder_y, y0) & (np.abs(_XX - strap_x) < 1.1), STRAP)
        paint(_box(bx - 0.5 * bag_w, bx + 0.5 * bag_w, y0, y0 + 0.42 * torso_h), BAG)
    elif p.bag == "handbag":
        hx = hand_xs[0] if side else hand_xs[(p.bag_side * (-1 if back else 1) + 1) // 2]
        paint(_box(hx - 0.35 * bag_w, hx + 0.35 * bag_w, hand_y - 0.01 * total, hand_y + 0.13 * total), BAG)

    # cylinder shading across the body and a soft top light
    rel = (_XX - cx) / max(sw + aw, 1.0)
    shade = np.clip(1.05 - 0.3 * rel ** 2 - 0.15 * (_YY - top_y) / max(total, 1.0), 0.55, 1.1)
    return lab, shade.astype(np.float32)


def _colour_table(p: Identity) -> np.ndarray:
    table = np.zeros((NUM_LABELS, 3), np.float32)
    table[SKIN], table[HAIR], table[TOP] = p.skin, p.hair_colour, p.top_colour
    table[TOP_PATTERN], table[BOTTOM], table[SHOES] = p.pattern_colour, p.bottom_colour, p.shoe_colour
    table[HAT], table[BAG], table[LOGO] = p.hat_colour, p.bag_colour, p.pattern_colour
    table[STRAP] = np.asarray(p.bag_colour) * 0.7
    return table


def _heat_table(p: Identity) -> np.ndarray:
    heat = np.zeros(NUM_LABELS, np.float32)
    heat[SKIN], heat[HAIR], heat[TOP] = p.skin_heat, 0.15 + 0.6 * _nir_reflectance(p.hair_colour), p.top_heat
    heat[TOP_PATTERN], heat[BOTTOM] = p.pattern_heat, p.bottom_heat
    heat[SHOES] = 0.1 + 0.5 * _nir_reflectance(p.shoe_colour)
    heat[HAT], heat[BAG], heat[LOGO], heat[STRAP] = (0.1 + 0.6 * _nir_reflectance(p.hat_colour), p.bag_heat,
                                                     p.pattern_heat, p.bag_heat)
    return np.repeat(heat[:, None] * 255.0, 3, axis=1)


def render(p: Identity, cam: Camera, rng: np.random.Generator, junk: bool = False) -> np.ndarray:
    """One crop (uint8, HEIGHT x WIDTH x 3) of identity `p` seen by camera `cam`.

    `junk` makes a bad detection: the person shifted half out of the box or cut off.
    """
    view = VIEWS[rng.choice(3, p=cam.view_probs)]
    facing = int(rng.choice([-1, 1]))
    scale = cam.scale * rng.uniform(0.93, 1.07)
    cx = WIDTH / 2 + rng.uniform(-3.5, 3.5)
    foot_y = HEIGHT - rng.uniform(1.0, 6.0)
    if junk:
        if rng.random() < 0.5:
            cx += rng.choice([-1, 1]) * rng.uniform(22, 34)
        else:
            foot_y += rng.uniform(40, 70)
    lab, shade = draw_labels(p, view, facing, scale, cx, foot_y, float(rng.uniform(-1, 1)))
    if rng.random() < cam.occlusion:  # a pole, a bench or another object in front of the person
        occ_colour = np.asarray(cam.occluder_colour, np.float32) * rng.uniform(0.8, 1.2)
        if rng.random() < 0.5:
            x0 = rng.uniform(0, WIDTH - 6)
            occ = (_XX >= x0) & (_XX < x0 + rng.uniform(4, 12))
        else:
            occ = _YY >= HEIGHT - rng.uniform(20, 50)
        lab[occ] = OCCLUDER
    else:
        occ_colour = None

    oy, ox = rng.integers(0, 33), rng.integers(0, SCENE_WIDTH - WIDTH + 33)
    img = cam.background[oy:oy + HEIGHT, ox:ox + WIDTH].copy()
    if cam.infrared:
        table = _heat_table(p)
        light = 1.0
        shade = 0.85 + 0.15 * shade  # heat hardly depends on lighting
        if occ_colour is not None:
            occ_colour = np.full(3, occ_colour.mean() * 0.5, np.float32)
    else:
        table = _colour_table(p)
        light = rng.uniform(0.88, 1.12)
    person = lab > 0
    img[person] = table[lab[person]] * shade[person][:, None]
    if occ_colour is not None:
        img[lab == OCCLUDER] = occ_colour
    img = img * (cam.gain * light) * np.asarray(cam.cast, np.float32)
    img = 255.0 * np.clip(img / 255.0, 0, 1) ** cam.gamma
    img += rng.normal(0, cam.noise, (HEIGHT, WIDTH, 1 if cam.infrared else 3)).astype(np.float32)
    out = Image.fromarray(np.clip(img, 0, 255).round().astype(np.uint8))
    radius = cam.blur * rng.uniform(0.7, 1.3)
    if radius > 0.25:
        out = out.filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(out)
