"""The tool table outside Qt: entries, options, and every tool's handlers on synthetic images."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.classes import UNLABELLED
from workbench.editing import LabelEditor, tool_table
from workbench.editing.superpixels import superpixel_labels, superpixel_selection
from workbench.editing.tool_table import (ACTIONS, BY_ID, TOOLS, Box, Circle, Polyline, RegionMask, ToolContext,
                                          ToolEvent, ToolOptions)

REPO = Path(__file__).resolve().parents[2]


def ctx_for(image, mask=None, value=1, pred=None, conf=None, options=None, superpixels=None):
    h, w = image.shape[:2]
    editor = LabelEditor(np.full((h, w), UNLABELLED, np.uint8) if mask is None else mask)
    return ToolContext(editor, image, value, options or ToolOptions(), pred, conf,
                       (lambda: superpixels) if superpixels is not None else (lambda: None))


def ev(x, y, **mods):
    """The event at the centre of pixel (x, y)."""
    return ToolEvent(x + 0.5, y + 0.5, **mods)


def two_colour(h=40, w=60):
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = (200, 30, 30)
    img[:, w // 2:] = (30, 30, 200)
    return img


def test_table_is_consistent():
    tool_table.check_table()
    ids = [t.id for t in TOOLS]
    assert ids[:4] == ["brush", "unlabel", "fill", "polygon"] and "eraser" not in ids
    for t in TOOLS:
        assert t.key and t.label and t.tooltip and t.cursor and t.help, t.id
        assert (REPO / "resources" / "icons" / f"{t.icon}.svg").is_file(), t.icon
        assert t.pans or t.press is not None, t.id
    for a in ACTIONS:
        assert (REPO / "resources" / "icons" / f"{a.icon}.svg").is_file()
    assert len({t.cursor for t in TOOLS}) == len(TOOLS)   # every tool has its own cursor
    with pytest.raises(KeyError, match="tools: brush"):
        tool_table.tool("eraser")


def test_options_clamp_step_and_keep_the_brush_diameter_odd():
    o = ToolOptions()
    assert o.brush_size == 17 and o.brush_radius == 8
    assert o.with_value("brush_size", 10).brush_size == 11
    assert o.with_value("brush_size", 0).brush_size == 1 and o.with_value("brush_size", 1).brush_radius == 0
    assert o.with_value("tolerance", 999).tolerance == 255
    assert o.stepped("tolerance", 2).tolerance == o.tolerance + 4
    assert o.stepped("threshold", -1).threshold == pytest.approx(o.threshold - 0.01)
    assert o.with_value("contiguous", False).contiguous is False
    with pytest.raises(KeyError, match="unknown tool option"):
        o.with_value("radius", 3)
    assert tool_table.wheel_option("brush") == "brush_size" and tool_table.wheel_option("wand") == "tolerance"
    assert tool_table.wheel_option("confident") == "threshold" and tool_table.wheel_option("fill") is None


def test_brush_drag_is_one_undo_step_and_unlabel_paints_255():
    img = two_colour()
    c = ctx_for(img, options=ToolOptions().with_value("brush_size", 3))
    brush = BY_ID["brush"]
    st: dict = {}
    out = brush.press(c, st, ev(5, 5))
    assert out.painted is not None and out.edited is None
    brush.move(c, st, ev(20, 5))
    out = brush.release(c, st, ev(20, 5))
    assert out.edited is not None and len(c.editor.history) == 1
    assert (c.editor.mask[5, 5:21] == 1).all() and c.editor.mask[8, 10] == UNLABELLED
    assert brush.preview(c, st, ev(3, 4)) == [Circle(3.5, 4.5, 1.5)]
    un = BY_ID["unlabel"]
    un.press(c, st, ev(10, 5))
    un.release(c, st, ev(10, 5))
    assert c.editor.mask[5, 10] == UNLABELLED and c.editor.mask[5, 5] == 1 and len(c.editor.history) == 2


def test_fill_pick_accept_and_polygon():
    img = two_colour()
    pred = np.zeros((40, 60), np.uint8)
    pred[10:20, 10:20] = 2
    c = ctx_for(img, value=3, pred=pred)
    assert BY_ID["fill"].press(c, {}, ev(1, 1)).edited == (0, 0, 40, 60)
    assert BY_ID["pick"].press(c, {}, ev(1, 1)).picked == 3
    c.editor.mask[:] = UNLABELLED
    assert BY_ID["pick"].press(c, {}, ev(12, 12)).picked == 2       # unlabelled: the prediction's class
    assert BY_ID["accept"].press(c, {}, ev(12, 12)).edited == (10, 10, 20, 20)
    poly, st = BY_ID["polygon"], {}
    for x, y in [(30, 5), (50, 5), (50, 15), (30, 15)]:
        poly.press(c, st, ToolEvent(x, y))
    poly.press(c, st, ToolEvent(30, 15))                              # a double-click's repeat is ignored
    assert len(st["points"]) == 4
    (line,) = poly.preview(c, st, ToolEvent(40, 30))
    assert isinstance(line, Polyline) and line.points[-1] == (40, 30)
    poly.undo_last(c, st)
    assert len(st["points"]) == 3
    poly.press(c, st, ToolEvent(30, 15))
    assert poly.finish(c, st).edited is not None and not st.get("points")
    assert (c.editor.mask[6:14, 31:49] == 3).all()
    assert poly.cancel(c, {"points": [(1, 1)]}).edited is None


def test_wand_selects_one_colour_with_a_preview_and_one_undo_step():
    img = two_colour()
    c = ctx_for(img, value=2)
    wand, st = BY_ID["wand"], {}
    wand.press(c, st, ev(5, 5))
    (region,) = wand.preview(c, st, None)
    assert isinstance(region, RegionMask) and region.bbox == (0, 0, 40, 30) and region.mask.all()
    out = wand.release(c, st, ev(5, 5))
    assert out.edited == (0, 0, 40, 30) and len(c.editor.history) == 1
    assert (c.editor.mask[:, :30] == 2).all() and (c.editor.mask[:, 30:] == UNLABELLED).all()


def test_wand_drag_widens_the_tolerance():
    img = np.zeros((10, 40, 3), np.uint8)
    img[:, 20:] = 60                       # a second colour 60 levels away
    c = ctx_for(img, options=ToolOptions().with_value("tolerance", 10))
    wand, st = BY_ID["wand"], {}
    wand.press(c, st, ev(2, 2))
    assert st["sel"].sum() == 10 * 20
    wand.move(c, st, ev(2 + 30, 2))        # 30 px right at 2 px per unit: +15, not yet the other colour
    assert st["tolerance"] == 25 and st["sel"].sum() == 10 * 20
    wand.move(c, st, ev(2 + 120, 2))       # +60
    assert st["tolerance"] == 70 and st["sel"].all()
    wand.release(c, st, ev(122, 2))
    assert (c.editor.mask == 1).all()


def disc_image(h=80, w=80, r=18):
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - 40) ** 2 + (xx - 40) ** 2 <= r * r
    img = np.full((h, w, 3), (40, 90, 40), np.uint8)
    img[disc] = (220, 200, 60)
    rng = np.random.default_rng(1)
    img = np.clip(img.astype(int) + rng.integers(-8, 9, img.shape), 0, 255).astype(np.uint8)
    return img, disc


def test_smart_region_box_runs_as_a_job_and_lands_as_one_step_refinements_replace_it():
    img, disc = disc_image()
    c = ctx_for(img, value=2, options=ToolOptions().with_value("brush_size", 3))  # the marks' width
    smart, st = BY_ID["smart"], {}
    smart.press(c, st, ToolEvent(15, 15))
    smart.move(c, st, ToolEvent(66, 66))
    (box,) = smart.preview(c, st, None)
    assert box == Box(15, 15, 66, 66)
    out = smart.release(c, st, ToolEvent(66, 66))
    assert out.job is not None and out.edited is None and len(c.editor.history) == 0
    landed = out.job.land(out.job.compute(None))
    assert landed.edited is not None and len(c.editor.history) == 1
    got = c.editor.mask == 2
    assert (got & disc).sum() / (got | disc).sum() > 0.9
    # an exclude stroke (Ctrl+drag) through the disc's left half reruns and replaces the step
    smart.press(c, st, ToolEvent(25, 40, ctrl=True))
    smart.move(c, st, ToolEvent(36, 40, ctrl=True))
    out = smart.release(c, st, ToolEvent(36, 40, ctrl=True))
    assert any(isinstance(s, Polyline) and s.role == "exclude" for s in smart.preview(c, st, None))
    out.job.land(out.job.compute(None))
    assert len(c.editor.history) == 1                 # replaced, not stacked
    assert c.editor.mask[40, 30] != 2
    c.editor.undo()
    assert (c.editor.mask == UNLABELLED).all()


def test_smart_region_click_without_box_does_nothing():
    img, _ = disc_image()
    c = ctx_for(img)
    smart, st = BY_ID["smart"], {}
    smart.press(c, st, ToolEvent(10, 10))
    out = smart.release(c, st, ToolEvent(11, 11))
    assert out.job is None and out.message


def test_superpixel_paint_respects_edges_and_waits_for_labels():
    img = two_colour(48, 64)
    c = ctx_for(img, value=1)
    sp = BY_ID["superpixel"]
    assert sp.press(c, {}, ev(5, 5)).message  # labels not computed yet
    labels = superpixel_labels(img, 8)
    c = ctx_for(img, value=1, superpixels=labels)
    (hover,) = sp.preview(c, {}, ev(5, 5))
    assert isinstance(hover, RegionMask)
    full = superpixel_selection(labels, [(5, 5)])      # the preview is exactly the cell under the cursor
    y0, x0, y1, x1 = hover.bbox
    assert (full[y0:y1, x0:x1] == hover.mask).all() and full.sum() == hover.mask.sum()
    st: dict = {}
    sp.press(c, st, ev(5, 5))
    sp.move(c, st, ev(20, 5))
    out = sp.release(c, st, ev(20, 5))
    assert out.edited is not None and len(c.editor.history) == 1
    painted = c.editor.mask == 1
    assert painted[5, 5] and painted[5, 20] and not painted[:, 32:].any()   # never across the colour edge


def test_accept_confident_preview_and_click_fill_only_unlabelled_confident_pixels():
    img = two_colour()
    pred = np.full((40, 60), 2, np.uint8)
    conf = np.full((40, 60), 0.95, np.float32)
    conf[:, 40:] = 0.3
    mask = np.full((40, 60), UNLABELLED, np.uint8)
    mask[0:5, 0:5] = 0                                    # a person's label
    c = ctx_for(img, mask=mask, pred=pred, conf=(conf * 255).astype(np.uint8),
                options=ToolOptions().with_value("threshold", 0.9))
    tool, st = BY_ID["confident"], {}
    (region,) = tool.preview(c, st, None)
    assert region.role == "accept" and region.bbox == (0, 0, 40, 60)
    assert region.mask[10:, :40].all() and not region.mask[:, 40:].any() and not region.mask[:5, :5].any()
    assert tool.press(c, st, ev(50, 30)).edited is not None and len(c.editor.history) == 1
    m = c.editor.mask
    assert (m[0:5, 0:5] == 0).all() and (m[10:, :40] == 2).all() and (m[:, 40:] == UNLABELLED).all()
    assert tool.preview(c, st, None) == []                # nothing left to accept
    assert ctx_for(img).editor is not None and tool.press(ctx_for(img), {}, ev(1, 1)).message


def test_next_error_region_cycles_largest_most_uncertain_first():
    pred = np.zeros((50, 50), np.uint8)
    conf = np.ones((50, 50), np.float32)
    conf[5:10, 5:10] = 0.2       # small
    conf[20:40, 20:40] = 0.3     # large
    i, first = tool_table.next_error_region(pred, conf)
    assert i == 0 and first.bbox == (20, 20, 40, 40)
    i, second = tool_table.next_error_region(pred, conf, i)
    assert second.bbox == (5, 5, 10, 10)
    assert tool_table.next_error_region(pred, conf, i)[0] == 0      # wraps
    assert tool_table.next_error_region(pred, np.ones((50, 50), np.float32)) is None


def test_readme_lists_every_tool_from_the_table():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert tool_table.markdown_table() in readme


def test_tool_table_imports_no_qt():
    code = ("import sys, workbench.editing.tool_table; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'superqt')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env={"PYTHONPATH": str(REPO)})
