"""CVAT for images 1.1 XML: files as CVAT 2.x exports them, and our export read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.errors import InputError
from workbench.formats import cvat, raster
from workbench.formats.base import NOT_LABELLED, ExportClass, ExportItem

CAMVID = Path(__file__).resolve().parents[2].parent / "shared" / "camvid"

# a person-shaped, not symmetric stencil: row-major and column-major RLE differ on it
STENCIL = np.array([[1, 1, 1, 0],
                    [0, 1, 0, 0],
                    [0, 1, 1, 1]], bool)


def cvat_xml(images: str, labels=(("road", "#804080"), ("car", "#fa3253"), ("person", "#3d3df5"))) -> str:
    # the layout CVAT 2.x writes for a job export ("CVAT for images 1.1")
    label_xml = "".join(f"""
        <label>
          <name>{n}</name>
          <color>{c}</color>
          <type>any</type>
          <attributes>
          </attributes>
        </label>""" for n, c in labels)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <job>
      <id>12</id>
      <size>2</size>
      <mode>annotation</mode>
      <overlap>0</overlap>
      <bugtracker></bugtracker>
      <created>2024-03-01 10:00:00.000000+00:00</created>
      <updated>2024-03-01 10:04:00.000000+00:00</updated>
      <subset>default</subset>
      <start_frame>0</start_frame>
      <stop_frame>1</stop_frame>
      <frame_filter></frame_filter>
      <segments>
        <segment>
          <id>12</id>
          <start>0</start>
          <stop>1</stop>
          <url>http://localhost:8080/api/jobs/12</url>
        </segment>
      </segments>
      <owner>
        <username>ann</username>
        <email>ann@example.com</email>
      </owner>
      <assignee></assignee>
      <labels>{label_xml}
      </labels>
    </job>
    <dumped>2024-03-01 10:05:00.000000+00:00</dumped>
  </meta>{images}
</annotations>
"""


IMAGES = f"""
  <image id="0" name="frame_000.png" width="50" height="40" subset="Train">
    <box label="car" source="manual" occluded="0" xtl="10.00" ytl="22.00" xbr="20.00" ybr="30.00" z_order="1">
    </box>
    <polygon label="road" source="manual" occluded="0" points="0.00,20.00;50.00,20.00;50.00,40.00;0.00,40.00" z_order="0">
    </polygon>
    <mask label="person" source="manual" occluded="0" rle="{cvat.encode_rle(STENCIL)}" left="30" top="5" width="4" height="3" z_order="0">
    </mask>
    <polyline label="road" source="manual" occluded="0" points="1.00,1.00;9.00,9.00" z_order="0">
    </polyline>
    <points label="person" source="manual" occluded="0" points="3.00,3.00" z_order="0">
    </points>
    <tag label="car" source="manual">
    </tag>
  </image>
  <image id="1" name="frame_001.png" width="50" height="40" subset="Validation">
    <polygon label="car" source="manual" occluded="0" points="40.00,30.00;70.00,30.00;70.00,60.00" z_order="0">
    </polygon>
    <polygon label="car" source="manual" occluded="0" points="100.00,100.00;120.00,100.00;120.00,120.00" z_order="0">
    </polygon>
    <polygon label="car" source="manual" occluded="0" points="1.00,1.00;2.00" z_order="0">
    </polygon>
    <polygon label="tree" source="manual" occluded="0" points="1.00,1.00;9.00,1.00;9.00,9.00" z_order="0">
    </polygon>
    <mask label="person" source="manual" occluded="0" rle="5, 6" left="0" top="0" width="3" height="3" z_order="0">
    </mask>
  </image>"""


def write(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "job"
    folder.mkdir(exist_ok=True)
    (folder / "annotations.xml").write_text(text)
    return folder


def test_detect_file_and_folder(tmp_path):
    folder = write(tmp_path, cvat_xml(IMAGES))
    assert cvat.detect(folder) and cvat.detect(folder / "annotations.xml")
    (tmp_path / "other.xml").write_text("<?xml version='1.0'?><annotation><object/></annotation>")
    assert not cvat.detect(tmp_path / "other.xml")


def test_rle_is_row_major_with_zeros_first():
    assert cvat.encode_rle(STENCIL) == "0, 3, 2, 1, 3, 3"
    assert (cvat.decode_rle("0, 3, 2, 1, 3, 3", 4, 3) == STENCIL).all()
    assert cvat.decode_rle("2, 1, 0", 3, 1).tolist() == [[False, False, True]]
    assert cvat.decode_rle("3, 4", 3, 3).sum() == 4     # short runs: the rest is 0, as CVAT decodes
    with pytest.raises(ValueError):
        cvat.decode_rle("5, 6", 3, 3)


def test_reads_shapes_by_z_order_with_meta_classes(tmp_path):
    result = cvat.read(write(tmp_path, cvat_xml(IMAGES)), image_size=lambda name: None)
    items = {i.image: i for i in result.items}
    assert [(c.name, c.value, c.color) for c in result.classes] == [
        ("road", 0, (0x80, 0x40, 0x80)), ("car", 1, (0xfa, 0x32, 0x53)), ("person", 2, (0x3d, 0x3d, 0xf5)),
        ("tree", 3, None)]
    m = items["frame_000.png"].mask
    assert m.shape == (40, 50) and items["frame_000.png"].split == "train"
    assert m[19, 0] == NOT_LABELLED and m[20, 0] == 0 and m[39, 49] == 0
    # the box is drawn over the road although it comes first: its z_order is higher
    assert (m[22:30, 10:20] == 1).all() and m[30, 15] == 0 and m[25, 20] == 0
    expected = np.where(STENCIL, 2, NOT_LABELLED)
    assert (m[5:8, 30:34] == expected).all()
    assert m[1, 1] == NOT_LABELLED            # the polyline paints nothing ...
    reasons = [p.reason for p in result.problems]
    assert any("no area" in r and "1 polyline" in r and "1 points" in r and "1 tag" in r for r in reasons)
    assert any("tree" in r and "<meta>" in r for r in reasons)


def test_problems_name_the_file_and_the_image(tmp_path):
    result = cvat.read(write(tmp_path, cvat_xml(IMAGES)), image_size=lambda name: None)
    items = {i.image: i for i in result.items}
    m = items["frame_001.png"].mask
    assert items["frame_001.png"].split == "val"
    assert m[39, 49] == 1                       # the clipped polygon is there
    probs = [p for p in result.problems if "frame_001.png" in p.file]
    assert all("annotations.xml" in p.file for p in probs)
    reasons = " | ".join(p.reason for p in probs)
    assert "outside" in reasons and "clipped" in reasons and "runs add up to 11" in reasons
    assert "points are not x,y pairs" in reasons


def test_size_mismatch_with_the_project_image_is_refused(tmp_path):
    result = cvat.read(write(tmp_path, cvat_xml(IMAGES)), image_size=lambda name: (80, 100))
    assert list(result.items) == []
    assert any("annotated as 50x40 but the image is 100x80" in p.reason for p in result.problems)


def test_malformed_xml_is_an_input_error_naming_the_file(tmp_path):
    folder = write(tmp_path, "<annotations><image name='a'></annotations>")
    with pytest.raises(InputError) as info:
        cvat.read(folder, image_size=lambda name: None)
    assert "annotations.xml" in str(info.value.path) and "not valid XML" in info.value.problem


CLASSES = [ExportClass("background", 0, (0, 0, 0)), ExportClass("road", 1, (128, 64, 128)),
           ExportClass("car", 2, (64, 0, 128))]


def project_mask() -> np.ndarray:
    m = np.zeros((40, 50), np.uint8)
    m[5:30, 5:40] = 1
    m[10:20, 10:20] = NOT_LABELLED
    m[12:16, 12:16] = 2
    m[25:35, 30:45] = 2
    m[38, :] = 1
    m[0, 0] = 2
    return m


def test_write_then_read_is_exact_with_holes(tmp_path):
    img = tmp_path / "frame.png"
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(img)
    m = project_mask()
    out = tmp_path / "out"
    rep = cvat.write(out, [ExportItem("frame.png", img, m, split="val")], CLASSES, images="copy")
    assert rep.written == 1 and (out / "images" / "frame.png").is_file()
    assert cvat.detect(out)
    text = (out / "annotations.xml").read_text()
    assert 'subset="Validation"' in text and "<color>#804080</color>" in text
    assert "__ignore__" not in text and text.count("<mask ") == 2   # the regions around the hole
    result = cvat.read(out, image_size=lambda name: (40, 50))
    assert [c.name for c in result.classes] == ["background", "road", "car"]
    (item,) = list(result.items)
    assert item.image == "frame.png" and item.split == "val"
    assert (item.mask == m).all()
    assert not result.problems


@pytest.mark.skipif(not (CAMVID / "trainannot").is_dir(), reason="../shared/camvid not present")
def test_camvid_round_trip_keeps_99_percent(tmp_path):
    paths = sorted((CAMVID / "trainannot").glob("*.png"))[:2]
    masks = {p.name: np.asarray(Image.open(p)).astype(np.uint8) for p in paths}
    classes = [ExportClass(f"c{i}", i, (i, i, i), void=i == 11) for i in range(12)]
    out = tmp_path / "out"
    cvat.write(out, [ExportItem(n, CAMVID / "train" / n, m) for n, m in masks.items()], classes, images="none")
    result = cvat.read(out, image_size=lambda name: None)
    for item in result.items:
        assert raster.agreement(masks[item.image], item.mask) >= 0.99


def test_absurd_coordinates_and_mask_boxes_are_problems(tmp_path):
    images = """
  <image id="0" name="a.png" width="50" height="40">
    <ellipse label="car" source="manual" occluded="0" cx="25" cy="20" rx="1e40" ry="3" z_order="0"></ellipse>
    <ellipse label="car" source="manual" occluded="0" cx="25" cy="20" rx="5" ry="3" rotation="30" z_order="0"></ellipse>
    <mask label="car" source="manual" occluded="0" rle="0, 1" left="0" top="0" width="1000000" height="1000000" z_order="0"></mask>
  </image>"""
    result = cvat.read(write(tmp_path, cvat_xml(images)), image_size=lambda name: None)
    (item,) = list(result.items)
    assert item.mask[20, 25] == 1 and item.mask[20, 31] == NOT_LABELLED
    reasons = " | ".join(p.reason for p in result.problems)
    assert "beyond" in reasons and "far larger than the 50x40 image" in reasons


def test_reads_the_zip_cvat_downloads(tmp_path):
    import zipfile

    folder = write(tmp_path, cvat_xml(IMAGES))
    archive = tmp_path / "task_12_annotations.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(folder / "annotations.xml", "annotations.xml")
        zf.writestr("images/frame_000.png", b"")
    assert cvat.detect(archive)
    result = cvat.read(archive, image_size=lambda name: None)
    assert sorted(i.image for i in result.items) == ["frame_000.png", "frame_001.png"]
    (tmp_path / "other.zip").write_bytes(b"not a zip")
    assert not cvat.detect(tmp_path / "other.zip")
