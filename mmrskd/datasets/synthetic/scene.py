"""Synthetic overhead scenes: textured terrain, clutter and oriented objects.

Terrain is multi-scale value noise tinted by a land-cover palette, with
striped fields, water and roads; buildings and trees are unannotated
distractors drawn before the objects. All randomness comes from the
``numpy.random.Generator`` passed in, so a scene is a pure function of its
seed.
"""
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import cv2
import numpy as np

from mmrskd.datasets.synthetic.painters import (WATER, Look, jitter, look_of,
                                                paint_object)

PALETTES = {
    'rural': ((75, 120, 95), ((60, 130, 80), (85, 150, 125), (70, 115, 140),
                              (105, 160, 175), (50, 100, 60))),
    'arid': ((120, 160, 185), ((110, 150, 175), (135, 170, 195),
                               (100, 135, 160), (90, 125, 150))),
    'urban': ((125, 125, 128), ((110, 110, 115), (140, 140, 142),
                                (100, 105, 110), (120, 130, 140))),
}
ROOFS = ((150, 150, 155), (120, 130, 150), (90, 100, 130), (170, 165, 160),
         (65, 75, 120))
DIFFICULT_CONTRAST = 0.45


@dataclass
class SceneObject:
    """One annotated object: its class and oriented box.

    ``angle`` is in radians from the x axis towards the y axis (clockwise on
    screen), in ``[-pi, pi)``; ``w`` lies along the object's heading and
    ``w >= h``.
    """
    name: str
    cx: float
    cy: float
    w: float
    h: float
    angle: float
    difficult: int

    @property
    def rbox(self) -> List[float]:
        return [self.cx, self.cy, self.w, self.h, self.angle]

    def corners(self) -> np.ndarray:
        """(4, 2) corners ``(-w/2, -h/2), (w/2, -h/2), (w/2, h/2), (-w/2,
        h/2)`` of the box frame in image coordinates: clockwise on screen."""
        local = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
        return self._to_image(local * (self.w, self.h))

    def heading_point(self) -> np.ndarray:
        """(2,) the middle of the front edge (a ship's bow)."""
        return self._to_image(np.array([[0.5 * self.w, 0.0]]))[0]

    def _to_image(self, points: np.ndarray) -> np.ndarray:
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        rotation = np.array([[cos, sin], [-sin, cos]])
        return points @ rotation + (self.cx, self.cy)


def fractal_noise(rng: np.random.Generator, height: int, width: int,
                  cells: Sequence[int] = (64, 32, 16, 8, 4)) -> np.ndarray:
    """(H, W) float32 value noise in [0, 1], octaves of cell size ``cells``.
    """
    total = np.zeros((height, width), np.float32)
    weight = 1.0
    for cell in cells:
        grid = rng.random((height // cell + 2, width // cell + 2))
        size = (grid.shape[1] * cell, grid.shape[0] * cell)
        layer = cv2.resize(grid.astype(np.float32), size,
                           interpolation=cv2.INTER_CUBIC)
        total += weight * layer[:height, :width]
        weight *= 0.55
    total -= total.min()
    return total / max(float(total.max()), 1e-6)


def _rotated_rect(cx, cy, w, h, angle) -> np.ndarray:
    local = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    cos, sin = np.cos(angle), np.sin(angle)
    return local * (w, h) @ np.array([[cos, sin], [-sin, cos]]) + (cx, cy)


def _fill(canvas, polygon, color) -> None:
    cv2.fillPoly(canvas, [np.round(polygon * 16).astype(np.int32)], color,
                 cv2.LINE_AA, shift=4)


def draw_terrain(rng: np.random.Generator, height: int,
                 width: int) -> np.ndarray:
    """(H, W, 3) uint8 terrain: tinted noise, fields, water and roads."""
    base, field_colors = PALETTES[rng.choice(sorted(PALETTES))]
    texture = 0.75 + 0.5 * fractal_noise(rng, height, width)[..., None]
    canvas = np.clip(np.array(base, np.float32) * texture, 0, 255)

    for _ in range(int(rng.integers(2, 7))):
        size = rng.uniform(40, 160, 2) * max(height, width) / 256
        polygon = _rotated_rect(*rng.uniform(0, (width, height)), *size,
                                rng.uniform(0, np.pi))
        x0, y0 = np.clip(np.floor(polygon.min(axis=0)).astype(int), 0, None)
        x1, y1 = np.minimum(np.ceil(polygon.max(axis=0)).astype(int) + 1,
                            (width, height))
        angle, period = rng.uniform(0, np.pi), rng.uniform(3, 8)
        color = jitter(field_colors[int(rng.integers(len(field_colors)))], rng)
        if x1 <= x0 or y1 <= y0:
            continue
        # Work inside the field's bounding box only: fields are small.
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        _fill(mask, polygon - (x0, y0), 255)
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        stripes = 1 + 0.08 * np.sin(
            2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
        roi = canvas[y0:y1, x0:x1]
        field = np.array(color, np.float32) * texture[y0:y1, x0:x1] * \
            stripes[..., None]
        alpha = (mask.astype(np.float32) / 255)[..., None]
        canvas[y0:y1, x0:x1] = roi * (1 - alpha) + field * alpha

    if rng.random() < 0.35:
        low = fractal_noise(rng, height, width, (128, 64, 32))
        water = cv2.GaussianBlur((low > 0.65).astype(np.float32), (5, 5), 1.5)
        tone = np.array(WATER, np.float32) * (0.9 + 0.2 * texture)
        canvas = canvas * (1 - water[..., None]) + tone * water[..., None]

    canvas = np.clip(canvas, 0, 255).astype(np.uint8)
    span = 2 * (height + width)
    for _ in range(int(rng.integers(0, 3))):
        x, y = rng.uniform(0, (width, height))
        angle = rng.uniform(0, np.pi)
        d = np.array([np.cos(angle), np.sin(angle)]) * span
        p0, p1 = np.round((np.array([x, y]) - d, np.array([x, y]) + d))
        p0, p1 = tuple(int(v) for v in p0), tuple(int(v) for v in p1)
        cv2.line(canvas, p0, p1, jitter((85, 85, 88), rng, 8),
                 int(rng.integers(4, 10)), cv2.LINE_AA)
        cv2.line(canvas, p0, p1, (175, 175, 175), 1, cv2.LINE_AA)
    return canvas


def draw_clutter(canvas: np.ndarray, rng: np.random.Generator) -> None:
    """Unannotated buildings and trees, with shadows, drawn in place."""
    height, width = canvas.shape[:2]
    area = height * width
    for _ in range(int(rng.integers(2, max(3, area // 4000)))):
        center = rng.uniform(0, (width, height))
        size = rng.uniform((12, 10), (30, 24))
        angle = rng.uniform(0, np.pi)
        roof = _rotated_rect(*center, *size, angle)
        _fill(canvas, roof + 2.0, (40, 40, 45))
        _fill(canvas, roof, jitter(ROOFS[int(rng.integers(len(ROOFS)))], rng))
        mid = _rotated_rect(*center, size[0], 1.0, angle)
        _fill(canvas, mid, (70, 70, 75))
    for _ in range(int(rng.integers(5, max(6, area // 1600)))):
        x, y = (int(v) for v in rng.uniform(0, (width, height)))
        radius = int(rng.integers(2, 6))
        cv2.circle(canvas, (x + 1, y + 1), radius, (25, 45, 30), -1,
                   cv2.LINE_AA)
        cv2.circle(canvas, (x, y), radius, jitter((40, 85, 45), rng, 10), -1,
                   cv2.LINE_AA)


def _separated(a: np.ndarray, b: np.ndarray, margin: float) -> bool:
    """Whether two convex quadrilaterals are at least ``margin`` apart
    along one of their edge normals (separating axis test)."""
    for poly in (a, b):
        edges = np.roll(poly, -1, axis=0) - poly
        normals = np.stack([-edges[:, 1], edges[:, 0]], axis=1)
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        for normal in normals:
            pa, pb = a @ normal, b @ normal
            if pa.max() + margin < pb.min() or pb.max() + margin < pa.min():
                return True
    return False


def place_objects(rng: np.random.Generator, width: int, height: int,
                  classes: Sequence[str], count: int,
                  difficult_ratio: float) -> List[SceneObject]:
    """Sample up to ``count`` non-overlapping objects fully inside the image.

    Args:
        rng (np.random.Generator): random source.
        width, height (int): image size.
        classes (Sequence[str]): class names to draw from, uniformly.
        count (int): objects wanted; fewer when they do not fit.
        difficult_ratio (float): chance of an object being difficult.

    Returns:
        list[SceneObject]: the placed objects.
    """
    objects, polygons = [], []
    for _ in range(count):
        name = classes[int(rng.integers(len(classes)))]
        look: Look = look_of(name)
        for _attempt in range(30):
            length = min(rng.uniform(*look.length), 0.6 * min(width, height))
            w, h = length, length / rng.uniform(*look.aspect)
            angle = rng.uniform(-np.pi, np.pi) if look.free_angle else 0.0
            half = 0.5 * np.abs(np.array([[np.cos(angle), np.sin(angle)],
                                          [np.sin(angle), np.cos(angle)]])
                                ) @ (w, h)
            if np.any(2 * half + 4 > (width, height)):
                continue
            cx, cy = rng.uniform(half + 2, (width - half[0] - 2,
                                            height - half[1] - 2))
            difficult = int(rng.random() < difficult_ratio)
            obj = SceneObject(name, float(cx), float(cy), float(w), float(h),
                              float(angle), difficult)
            corners = obj.corners()
            if all(_separated(corners, p, 3.0) for p in polygons):
                objects.append(obj)
                polygons.append(corners)
                break
    return objects


def render_scene(rng: np.random.Generator, width: int, height: int,
                 classes: Sequence[str], count: int,
                 difficult_ratio: float = 0.1
                 ) -> Tuple[np.ndarray, List[SceneObject]]:
    """Render one image with ``count`` objects (fewer if they do not fit).

    Args:
        rng (np.random.Generator): random source.
        width, height (int): image size.
        classes (Sequence[str]): class names to draw from.
        count (int): objects wanted; 0 gives a background image.
        difficult_ratio (float): chance of an object being difficult (drawn
            at low contrast).

    Returns:
        tuple: (H, W, 3) uint8 BGR image and its objects.
    """
    canvas = draw_terrain(rng, height, width)
    draw_clutter(canvas, rng)
    objects = place_objects(rng, width, height, classes, count,
                            difficult_ratio)
    for obj in objects:
        paint_object(canvas, obj.cx, obj.cy, obj.w, obj.h, obj.angle,
                     look_of(obj.name), rng,
                     DIFFICULT_CONTRAST if obj.difficult else 1.0)
    noise = 3.0 * rng.standard_normal(canvas.shape, dtype=np.float32)
    canvas = np.clip(canvas + noise, 0, 255).astype(np.uint8)
    return cv2.GaussianBlur(canvas, (3, 3), 0.5), objects
