"""Class-distinctive drawings of remote-sensing objects (numpy + cv2 only).

A painter draws one object inside its oriented box. It works in the box
frame: ``u`` along the box width ``w`` (the object's length or heading),
``v`` along the height ``h``, origin at the centre, so the object fills
``[-w/2, w/2] x [-h/2, h/2]`` whatever its rotation. A painter returns a list
of :class:`Part`; :func:`paint_object` casts the shadows of the solid parts,
draws the parts in order and, for difficult objects, blends the result at
low contrast. Colours are BGR.
"""
import zlib
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

Color = Tuple[int, int, int]

WATER = (95, 70, 35)
GRASS = (60, 135, 65)
WHITE = (245, 245, 245)
DARK = (45, 45, 45)
VEHICLE_COLORS = ((40, 40, 200), (200, 90, 30), (235, 235, 235),
                  (30, 180, 230), (40, 150, 40), (160, 60, 160), (20, 20, 20))


@dataclass
class Part:
    """One drawing primitive in box-frame coordinates.

    Attributes:
        points (np.ndarray): (k, 2) polygon or polyline vertices ``(u, v)``.
        color (tuple): BGR colour.
        thickness (int): 0 fills a polygon; > 0 draws a closed outline, < 0
            an open polyline of width ``-thickness``.
        shadow (bool): casts a shadow.
    """
    points: np.ndarray
    color: Color
    thickness: int = 0
    shadow: bool = False


@dataclass(frozen=True)
class Look:
    """How one class looks.

    Attributes:
        painter (callable): ``painter(w, h, look, rng) -> list[Part]``.
        length (tuple): range of the box width ``w`` in pixels.
        aspect (tuple): range of ``w / h``.
        color (tuple, optional): main BGR colour; None lets the painter pick
            per instance.
        free_angle (bool): random rotation; False keeps round objects axis
            aligned, as annotators draw them.
        detail (str): painter-specific variant.
    """
    painter: Callable
    length: Tuple[float, float]
    aspect: Tuple[float, float]
    color: Optional[Color] = None
    free_angle: bool = True
    detail: str = ''


def rect(u0, v0, u1, v1) -> np.ndarray:
    return np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]], np.float64)


def ellipse(cu, cv, ru, rv, num=32, start=0.0, stop=2 * np.pi) -> np.ndarray:
    t = np.linspace(start, stop, num, endpoint=stop - start < 2 * np.pi)
    return np.stack([cu + ru * np.cos(t), cv + rv * np.sin(t)], axis=1)


def stadium(w, h, scale=1.0) -> np.ndarray:
    """A running-track outline: two half discs joined by straights."""
    r = 0.5 * h * scale
    straight = max(0.5 * w * scale - r, 0.0)
    right = ellipse(straight, 0, r, r, 16, -np.pi / 2, np.pi / 2)
    left = ellipse(-straight, 0, r, r, 16, np.pi / 2, 1.5 * np.pi)
    return np.concatenate([right, left])


def jitter(color: Color, rng: np.random.Generator, amount=12) -> Color:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255))
                 for c in color)


def paint_plane(w, h, look, rng):
    body = jitter(look.color, rng)
    wing = [(0.12, 0.05), (-0.12, 0.5), (-0.24, 0.5), (-0.08, 0.05)]
    wings = [np.array([(u * w, s * v * h) for u, v in wing]) for s in (1, -1)]
    tail = np.array([(-0.36, -0.03), (-0.47, -0.2), (-0.5, -0.2), (-0.45, 0),
                     (-0.5, 0.2), (-0.47, 0.2), (-0.36, 0.03)]) * (w, h)
    fuselage = np.array([(0.5, 0), (0.4, -0.06), (-0.5, -0.045),
                         (-0.5, 0.045), (0.4, 0.06)]) * (w, h)
    parts = [Part(p, body, shadow=True) for p in (*wings, tail, fuselage)]
    for side in (1, -1):
        parts.append(Part(ellipse(0, side * 0.22 * h, 0.06 * w, 0.035 * h, 12),
                          (120, 120, 125)))
    parts.append(Part(rect(0.3 * w, -0.03 * h, 0.38 * w, 0.03 * h), DARK))
    return parts


def paint_ship(w, h, look, rng):
    hull_color = jitter(look.color, rng, 8)
    hull = np.array([(0.5, 0), (0.25, -0.5), (-0.5, -0.42), (-0.5, 0.42),
                     (0.25, 0.5)]) * (w, h)
    parts = [Part(ellipse(0, 0, 0.62 * w, 1.2 * h, 32), WATER),
             Part(hull, hull_color, shadow=True)]
    if look.detail == 'runway':
        deck_line = np.array([(-0.45 * w, 0.1 * h), (0.35 * w, -0.1 * h)])
        parts.append(Part(deck_line, WHITE,
                          thickness=-max(1, int(0.04 * h))))
        parts.append(Part(rect(-0.1 * w, 0.28 * h, 0.08 * w, 0.46 * h),
                          (200, 200, 200)))
    elif look.detail == 'containers':
        for u in np.arange(-0.42, 0.2, 0.1):
            color = VEHICLE_COLORS[int(rng.integers(len(VEHICLE_COLORS) - 1))]
            parts.append(Part(rect(u * w, -0.32 * h, (u + 0.08) * w, 0.32 * h),
                              color))
        parts.append(Part(rect(-0.5 * w, -0.36 * h, -0.44 * w, 0.36 * h),
                          WHITE))
    elif look.detail == 'warship':
        for u in (-0.3, -0.12, 0.08):
            parts.append(Part(rect(u * w, -0.18 * h, (u + 0.12) * w, 0.18 * h),
                              (110, 110, 105)))
        parts.append(Part(ellipse(0.3 * w, 0, 0.04 * w, 0.12 * h, 10), DARK))
    elif look.detail == 'submarine':
        parts[1] = Part(ellipse(0, 0, 0.5 * w, 0.5 * h, 24), hull_color,
                        shadow=True)
        parts.append(Part(rect(0.02 * w, -0.18 * h, 0.14 * w, 0.18 * h),
                          (70, 70, 70)))
    else:
        parts.append(Part(rect(-0.32 * w, -0.26 * h, -0.06 * w, 0.26 * h),
                          (150, 150, 150), shadow=True))
        parts.append(Part(np.array([(-0.45 * w, 0), (0.4 * w, 0)]),
                          (170, 170, 170), thickness=-1))
    return parts


def paint_car(w, h, look, rng):
    color = look.color or VEHICLE_COLORS[int(rng.integers(
        len(VEHICLE_COLORS)))]
    body = np.array([(0.5, -0.35), (0.44, -0.5), (-0.44, -0.5), (-0.5, -0.35),
                     (-0.5, 0.35), (-0.44, 0.5), (0.44, 0.5),
                     (0.5, 0.35)]) * (w, h)
    glass = (30, 30, 30) if sum(color) > 200 else (150, 150, 150)
    return [Part(body, color, shadow=True),
            Part(rect(0.1 * w, -0.4 * h, 0.28 * w, 0.4 * h), glass),
            Part(rect(-0.4 * w, -0.38 * h, -0.28 * w, 0.38 * h), glass)]


def paint_truck(w, h, look, rng):
    cab = VEHICLE_COLORS[int(rng.integers(len(VEHICLE_COLORS) - 1))]
    parts = [Part(rect(-0.5 * w, -0.5 * h, 0.22 * w, 0.5 * h),
                  jitter(look.color, rng), shadow=True),
             Part(rect(0.26 * w, -0.44 * h, 0.5 * w, 0.44 * h), cab,
                  shadow=True),
             Part(rect(0.4 * w, -0.38 * h, 0.47 * w, 0.38 * h), DARK)]
    for u in np.linspace(-0.4, 0.12, 4):
        parts.append(Part(np.array([(u * w, -0.45 * h), (u * w, 0.45 * h)]),
                          (160, 160, 165), thickness=-1))
    return parts


def paint_tank(w, h, look, rng):
    r = 0.5 * w
    return [Part(ellipse(0, 0, r, r), jitter(look.color, rng), shadow=True),
            Part(ellipse(0, 0, 0.72 * r, 0.72 * r), (140, 140, 145),
                 thickness=1),
            Part(ellipse(0, 0, 0.12 * r, 0.12 * r, 12), (90, 90, 95))]


def paint_court(w, h, look, rng):
    line = max(1, int(round(0.03 * h)))
    parts = [Part(rect(-0.5 * w, -0.5 * h, 0.5 * w, 0.5 * h),
                  jitter(look.color, rng, 8))]
    inner = rect(-0.42 * w, -0.38 * h, 0.42 * w, 0.38 * h)
    if look.detail == 'basketball':
        parts += [Part(inner, WHITE, thickness=line),
                  Part(np.array([(0, -0.38 * h), (0, 0.38 * h)]), WHITE,
                       thickness=-line),
                  Part(ellipse(0, 0, 0.12 * h, 0.12 * h, 20), WHITE,
                       thickness=line)]
        for s in (1, -1):
            parts.append(Part(rect(s * 0.42 * w, -0.12 * h, s * 0.28 * w,
                                   0.12 * h), (60, 90, 180)))
        return parts
    parts += [Part(inner, (150, 95, 45)),
              Part(inner, WHITE, thickness=line),
              Part(np.array([(0, -0.45 * h), (0, 0.45 * h)]), WHITE,
                   thickness=-line),
              Part(rect(-0.24 * w, -0.38 * h, 0.24 * w, 0.38 * h), WHITE,
                   thickness=line),
              Part(np.array([(-0.24 * w, 0), (0.24 * w, 0)]), WHITE,
                   thickness=-line)]
    return parts


def paint_diamond(w, h, look, rng):
    home = np.array([-0.5 * w, 0.5 * h])
    fan = np.concatenate([[home], home + ellipse(0, 0, w, h, 20,
                                                 -np.pi / 2, 0.0)])
    infield = np.concatenate([[home], home + ellipse(0, 0, 0.6 * w, 0.6 * h,
                                                     16, -np.pi / 2, 0.0)])
    grass = home + rect(0.08 * w, -0.08 * h, 0.34 * w, -0.34 * h)
    return [Part(fan, jitter(GRASS, rng)),
            Part(infield, jitter(look.color, rng)),
            Part(grass, GRASS),
            Part(np.array([home + (0, -h), home, home + (w, 0)]), WHITE,
                 thickness=-1)]


def paint_track(w, h, look, rng):
    parts = []
    if look.detail == 'stands':
        parts.append(Part(stadium(w, h), (175, 175, 180), shadow=True))
        w, h = 0.86 * w, 0.8 * h
    return parts + [Part(stadium(w, h), jitter(look.color, rng)),
                    Part(stadium(w, h, 0.92), WHITE, thickness=1),
                    Part(stadium(w, h, 0.78), jitter(GRASS, rng))]


def paint_pitch(w, h, look, rng):
    base = jitter(look.color, rng)
    darker = tuple(max(c - 18, 0) for c in base)
    parts = [Part(rect(-0.5 * w, -0.5 * h, 0.5 * w, 0.5 * h), base)]
    for u in np.arange(-0.5, 0.5, 0.2):
        parts.append(Part(rect(u * w, -0.5 * h, (u + 0.1) * w, 0.5 * h),
                          darker))
    parts += [Part(rect(-0.45 * w, -0.43 * h, 0.45 * w, 0.43 * h), WHITE,
                   thickness=1),
              Part(np.array([(0, -0.43 * h), (0, 0.43 * h)]), WHITE,
                   thickness=-1),
              Part(ellipse(0, 0, 0.14 * h, 0.14 * h, 20), WHITE, thickness=1)]
    return parts


def paint_golf(w, h, look, rng):
    t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    radius = 0.5 * (0.8 + 0.2 * np.cos(3 * t + rng.uniform(0, 6)))
    blob = np.stack([radius * w * np.cos(t), radius * h * np.sin(t)], axis=1)
    parts = [Part(blob * 1.25, jitter(look.color, rng)),
             Part(blob * 0.7, (90, 185, 110))]
    for _ in range(3):
        cu, cv = rng.uniform(-0.3, 0.3, 2) * (w, h)
        parts.append(Part(ellipse(cu, cv, 0.07 * w, 0.05 * h, 12),
                          (150, 200, 225)))
    return [Part(np.clip(p.points, (-w / 2, -h / 2), (w / 2, h / 2)),
                 p.color) for p in parts]


def paint_roundabout(w, h, look, rng):
    r = 0.5 * w
    parts = [Part(ellipse(0, 0, r, r), jitter(look.color, rng))]
    for k in range(4):
        angle = k * np.pi / 2
        stub = rect(0.6 * r, -0.14 * r, r, 0.14 * r)
        rot = np.array([[np.cos(angle), -np.sin(angle)],
                        [np.sin(angle), np.cos(angle)]])
        parts.append(Part(stub @ rot.T, (150, 150, 150)))
    parts += [Part(ellipse(0, 0, 0.55 * r, 0.55 * r), jitter(GRASS, rng)),
              Part(ellipse(0, 0, 0.78 * r, 0.78 * r), WHITE, thickness=1)]
    return parts


def paint_pool(w, h, look, rng):
    parts = [Part(rect(-0.5 * w, -0.5 * h, 0.5 * w, 0.5 * h), WHITE),
             Part(rect(-0.42 * w, -0.38 * h, 0.42 * w, 0.38 * h),
                  jitter(look.color, rng))]
    if h >= 10:
        for v in (-0.13, 0.13):
            parts.append(Part(np.array([(-0.38 * w, v * h),
                                        (0.38 * w, v * h)]),
                              (200, 140, 40), thickness=-1))
    return parts


def paint_strip(w, h, look, rng):
    parts = []
    if look.detail == 'water':
        parts.append(Part(rect(-0.3 * w, -2.0 * h, 0.3 * w, 2.0 * h), WATER))
    if look.detail == 'reservoir':
        parts.append(Part(rect(-0.5 * w, -2.0 * h, 0.5 * w, -0.5 * h), WATER))
    parts += [Part(rect(-0.5 * w, -0.5 * h, 0.5 * w, 0.5 * h),
                   jitter(look.color, rng), shadow=look.detail != 'reservoir'),
              Part(np.array([(-0.5 * w, 0), (0.5 * w, 0)]), (225, 225, 225),
                   thickness=-1)]
    for v in (-0.42, 0.42):
        parts.append(Part(np.array([(-0.5 * w, v * h), (0.5 * w, v * h)]),
                          (85, 85, 85), thickness=-1))
    return parts


def paint_pier(w, h, look, rng):
    color = jitter(look.color, rng)
    parts = [Part(rect(-0.5 * w, -0.5 * h, 0.5 * w, 0.5 * h), WATER),
             Part(rect(-0.5 * w, -0.5 * h, 0.5 * w, -0.3 * h), color)]
    for u in np.linspace(-0.44, 0.44, 5):
        parts.append(Part(rect((u - 0.025) * w, -0.3 * h, (u + 0.025) * w,
                               0.5 * h), color))
    return parts


def paint_helicopter(w, h, look, rng):
    blade = -max(1, int(round(0.05 * w)))
    return [Part(rect(-0.5 * w, -0.04 * h, 0.0, 0.04 * h), look.color,
                 shadow=True),
            Part(ellipse(0.15 * w, 0, 0.3 * w, 0.2 * h, 20),
                 jitter(look.color, rng), shadow=True),
            Part(np.array([(-0.48 * w, -0.15 * h), (-0.48 * w, 0.15 * h)]),
                 DARK, thickness=-1),
            Part(np.array([(-0.25 * w, -0.5 * h), (0.5 * w, 0.45 * h)]),
                 DARK, thickness=blade),
            Part(np.array([(-0.25 * w, 0.5 * h), (0.5 * w, -0.45 * h)]),
                 DARK, thickness=blade)]


def paint_windmill(w, h, look, rng):
    parts = []
    for k in range(3):
        angle = k * 2 * np.pi / 3
        blade = np.array([(0, -0.04 * h), (0.5 * w, 0), (0, 0.04 * h)])
        rot = np.array([[np.cos(angle), -np.sin(angle)],
                        [np.sin(angle), np.cos(angle)]])
        parts.append(Part(blade @ rot.T, jitter(look.color, rng, 6),
                          shadow=True))
    parts.append(Part(ellipse(0, 0, 0.07 * w, 0.07 * h, 12), (170, 170, 170)))
    return parts


def paint_block(w, h, look, rng):
    """Building complexes: airports, stations, service areas, toll gates."""
    color = jitter(look.color, rng)
    parts = [Part(rect(-0.5 * w, -0.5 * h, 0.5 * w, 0.5 * h), color)]
    if look.detail == 'runway':
        parts += [Part(rect(-0.5 * w, -0.12 * h, 0.5 * w, 0.12 * h), DARK),
                  Part(np.array([(-0.45 * w, 0), (0.45 * w, 0)]), WHITE,
                       thickness=-1),
                  Part(rect(-0.3 * w, 0.25 * h, 0.3 * w, 0.45 * h),
                       (200, 200, 205), shadow=True)]
    elif look.detail == 'platforms':
        for v in np.linspace(-0.4, 0.4, 5):
            parts.append(Part(rect(-0.48 * w, (v - 0.06) * h, 0.48 * w,
                                   (v + 0.06) * h), (205, 205, 210)))
    elif look.detail == 'lanes':
        for v in np.linspace(-0.35, 0.35, 5):
            parts.append(Part(rect(-0.5 * w, (v - 0.05) * h, 0.5 * w,
                                   (v + 0.05) * h), (70, 70, 70)))
        parts.append(Part(rect(-0.1 * w, -0.5 * h, 0.1 * w, 0.5 * h),
                          (220, 120, 40), shadow=True))
    else:
        for u in np.linspace(-0.4, 0.4, 6):
            parts.append(Part(rect((u - 0.03) * w, -0.4 * h, (u + 0.03) * w,
                                   0.4 * h), (225, 225, 225)))
        parts.append(Part(rect(-0.45 * w, -0.48 * h, 0.45 * w, -0.42 * h),
                          (90, 90, 90)))
    return parts


def name_key(name: str) -> str:
    """Normalise a class name so spellings across datasets match."""
    return ''.join(c for c in name.lower() if c.isalnum())


def _looks() -> Dict[str, Look]:
    plane = Look(paint_plane, (22, 56), (0.95, 1.1), (232, 232, 236))
    ship = Look(paint_ship, (22, 64), (3.2, 4.5), (236, 236, 236))
    vehicle = Look(paint_car, (9, 16), (1.8, 2.3))
    tank = Look(paint_tank, (12, 40), (1.0, 1.0), (210, 220, 226), False)
    tennis = Look(paint_court, (26, 48), (2.0, 2.3), (70, 140, 60))
    basket = Look(paint_court, (26, 48), (1.7, 1.9), (80, 140, 215), True,
                  'basketball')
    diamond = Look(paint_diamond, (28, 60), (1.0, 1.0), (120, 170, 205))
    track = Look(paint_track, (50, 100), (1.6, 1.9), (70, 80, 165))
    bridge = Look(paint_strip, (40, 100), (4.0, 7.0), (150, 150, 150), True,
                  'water')
    harbor = Look(paint_pier, (40, 90), (2.0, 3.5), (190, 190, 195))
    looks = {
        'plane': plane, 'airplane': plane,
        'ship': ship,
        'smallvehicle': vehicle, 'vehicle': vehicle,
        'largevehicle': Look(paint_truck, (18, 32), (2.6, 3.4),
                             (215, 218, 222)),
        'storagetank': tank,
        'chimney': Look(paint_tank, (8, 18), (1.0, 1.0), (95, 95, 100),
                        False),
        'tenniscourt': tennis,
        'basketballcourt': basket,
        'baseballdiamond': diamond, 'baseballfield': diamond,
        'groundtrackfield': track,
        'stadium': Look(paint_track, (60, 110), (1.4, 1.6), (70, 80, 165),
                        True, 'stands'),
        'soccerballfield': Look(paint_pitch, (40, 80), (1.4, 1.6),
                                (60, 150, 70)),
        'golffield': Look(paint_golf, (60, 110), (1.2, 1.6), (70, 165, 95)),
        'roundabout': Look(paint_roundabout, (32, 64), (1.0, 1.0),
                           (115, 115, 115), False),
        'swimmingpool': Look(paint_pool, (12, 32), (1.4, 2.2),
                             (230, 190, 80)),
        'bridge': bridge,
        'overpass': Look(paint_strip, (40, 100), (3.5, 6.0), (165, 165, 160)),
        'dam': Look(paint_strip, (50, 110), (4.0, 7.0), (170, 190, 200), True,
                    'reservoir'),
        'harbor': harbor,
        'helicopter': Look(paint_helicopter, (16, 32), (1.0, 1.3),
                           (70, 95, 75)),
        'windmill': Look(paint_windmill, (18, 40), (1.0, 1.0),
                         (240, 240, 240)),
        'airport': Look(paint_block, (70, 120), (1.5, 2.5), (140, 150, 150),
                        True, 'runway'),
        'trainstation': Look(paint_block, (50, 100), (2.0, 3.5),
                             (110, 115, 120), True, 'platforms'),
        'expresswaytollstation': Look(paint_block, (30, 60), (1.2, 1.8),
                                      (150, 150, 150), True, 'lanes'),
        'expresswayservicearea': Look(paint_block, (50, 100), (1.3, 2.0),
                                      (150, 160, 175)),
    }
    looks.update(_hrsc_looks())
    return looks


def _hrsc_looks() -> Dict[str, Look]:
    """Ship looks of the 31 HRSC2016 classes: four hull families, with the
    hull colour shifted per class so every class differs slightly."""
    families = {
        'runway': ('aircraft carrier', 'Nimitz', 'Enterprise', 'Kitty Hawk',
                   'Kuznetsov', 'Tarawa', 'Ford-class', 'Midway-class',
                   'Invincible-class'),
        'warship': ('warcraft', 'Arleigh Burke', 'WhidbeyIsland', 'Perry',
                    'Sanantonio', 'Ticonderoga', 'Abukuma', 'Austen',
                    'Blue Ridge', 'Hovercraft'),
        'containers': ('merchant ship', 'Container', 'OXo|--)',
                       'Car carrier([]==[])', 'CntShip(_|.--.--|_]=',
                       'Car carrier(======|'),
        'submarine': ('submarine', ),
        '': ('yacht', 'Cruise', 'lute', 'Medical'),
    }
    base = {'runway': (105, 105, 100), 'warship': (150, 150, 140),
            'containers': (45, 55, 140), 'submarine': (40, 40, 40),
            '': (236, 236, 236)}
    size = {'runway': ((70, 130), (4.5, 6.0)),
            'warship': ((40, 90), (4.5, 6.5)),
            'containers': ((50, 110), (4.5, 6.0)),
            'submarine': ((30, 70), (6.0, 8.0)),
            '': ((24, 60), (3.0, 4.0))}
    looks = {}
    for detail, names in families.items():
        for name in names:
            shift = zlib.crc32(name.encode()) % 21 - 10
            color = tuple(int(np.clip(c + shift, 0, 255))
                          for c in base[detail])
            looks[name_key(name)] = Look(paint_ship, *size[detail], color,
                                         True, detail)
    return looks


LOOKS = _looks()


def look_of(name: str) -> Look:
    """The :class:`Look` of a class name of any supported dataset."""
    return LOOKS[name_key(name)]


def box_frame(cx: float, cy: float, angle: float):
    """A function mapping box-frame ``(k, 2)`` points to image points."""
    cos, sin = np.cos(angle), np.sin(angle)
    rot = np.array([[cos, -sin], [sin, cos]])

    def to_image(points: np.ndarray) -> np.ndarray:
        return points @ rot.T + (cx, cy)

    return to_image


def _draw(canvas: np.ndarray, points: np.ndarray, color: Color,
          thickness: int) -> None:
    pts = [np.round(points * 16).astype(np.int32)]
    if thickness == 0:
        cv2.fillPoly(canvas, pts, color, cv2.LINE_AA, shift=4)
    else:
        cv2.polylines(canvas, pts, thickness > 0, color, abs(thickness),
                      cv2.LINE_AA, shift=4)


def paint_object(canvas: np.ndarray, cx: float, cy: float, w: float,
                 h: float, angle: float, look: Look, rng: np.random.Generator,
                 contrast: float = 1.0) -> None:
    """Draw one object in place.

    Args:
        canvas (np.ndarray): (H, W, 3) uint8 BGR image.
        cx, cy, w, h, angle (float): the oriented box; ``angle`` in radians
            from the x axis towards y, ``w`` along the object's heading.
        look (Look): the class's appearance.
        rng (np.random.Generator): source of per-instance variation.
        contrast (float): 1 draws normally; lower blends the object into the
            background (difficult objects).
    """
    to_image = box_frame(cx, cy, angle)
    parts: Sequence[Part] = look.painter(w, h, look, rng)
    layer = canvas.copy()
    shadow = np.zeros(canvas.shape[:2], np.uint8)
    offset = np.array([1.0, 1.0]) * max(1.0, 0.08 * min(w, h))
    for part in parts:
        if part.shadow:
            _draw(shadow, to_image(part.points) + offset, 255, 0)
    dim = (shadow.astype(np.float32) / 255.0 * 0.45)[..., None]
    layer[:] = (layer * (1.0 - dim)).astype(np.uint8)
    for part in parts:
        _draw(layer, to_image(part.points), part.color, part.thickness)
    if contrast >= 1.0:
        canvas[:] = layer
    else:
        cv2.addWeighted(layer, contrast, canvas, 1.0 - contrast, 0.0,
                        dst=canvas)
