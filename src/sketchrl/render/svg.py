"""Vector output: a stroke-3 sketch as an SVG document."""

from __future__ import annotations

import numpy as np

from sketchrl.render.geometry import check_stroke3, place_sketch


def format_points(points: np.ndarray) -> str:
    """``M x y L x y ...`` for a polyline; a single point becomes a zero-length (dot) path."""
    coords = [f"{x:.2f} {y:.2f}" for x, y in points.tolist()]
    if len(coords) == 1:
        return f"M {coords[0]} l 0 0"
    return f"M {coords[0]} L " + " L ".join(coords[1:])


def sketch_to_svg(
    sketch: np.ndarray, size: int = 256, line_width: float = 2.0, margin: float = 0.1
) -> str:
    """An SVG document ``size`` x ``size`` with one ``<path>`` per pen-down stroke.

    Placement matches :func:`sketchrl.render.render` (centred, scaled to fit with ``margin``,
    round caps and joins, so a single-point stroke shows as a dot); black ink on a white
    background. A sketch with no drawn segment gives the background only.
    """
    placed = place_sketch(check_stroke3(sketch), size, margin)
    paths = "".join(f'  <path d="{format_points(stroke)}"/>\n' for stroke in placed.strokes)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'viewBox="0 0 {size} {size}">\n'
        f'  <rect width="{size}" height="{size}" fill="white"/>\n'
        f'  <g fill="none" stroke="black" stroke-width="{line_width:g}" '
        f'stroke-linecap="round" stroke-linejoin="round">\n'
        f"{paths}"
        "  </g>\n"
        "</svg>\n"
    )
