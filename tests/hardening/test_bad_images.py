"""Every image of the corpus through imageio: reads fine, or InputError naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.hardening import corpus
from workbench import imageio
from workbench.errors import InputError
from workbench.project import Project


@pytest.fixture(scope="module")
def image_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, corpus.Case]:
    folder = tmp_path_factory.mktemp("images")
    return {c.name: c for c in corpus.image_cases(folder)}


CASE_NAMES = corpus.case_names(corpus.image_cases)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_read_image(image_corpus: dict[str, corpus.Case], name: str) -> None:
    case = image_corpus[name]
    arr = corpus.check(case, imageio.read_image)
    if case.expect == corpus.OK:
        assert arr.dtype == np.uint8 and arr.flags.c_contiguous


@pytest.mark.parametrize("name", CASE_NAMES)
def test_image_size_agrees_with_pixels(image_corpus: dict[str, corpus.Case], name: str) -> None:
    """The header-only size is the decoded size (EXIF rotation included), or the same error."""
    case = image_corpus[name]
    if case.expect == corpus.OK:
        w, h = imageio.image_size(case.path)
        assert (h, w, 3) == case.shape
    elif case.problem != "truncated":  # a truncated file may have an intact header
        corpus.check(case, imageio.image_size)


def test_exif_rotation_matches_viewer(image_corpus: dict[str, corpus.Case]) -> None:
    """A phone photo (EXIF orientation 6) comes out upright: stored 32x24, shown 24x32."""
    arr = imageio.read_image(image_corpus["exif_rotated"].path)
    assert arr.shape == (32, 24, 3)


def test_sixteen_bit_uses_full_range(image_corpus: dict[str, corpus.Case]) -> None:
    """16-bit data is scaled by its range, so a 12-bit image is not shown black."""
    arr = imageio.read_image(image_corpus["gray16_png"].path)
    assert arr.min() == 0 and arr.max() == 255


def test_list_images_skips_what_is_not_a_file(image_corpus: dict[str, corpus.Case]) -> None:
    """Listing a folder never decodes; the names with image extensions are all listed."""
    folder = next(iter(image_corpus.values())).path.parent
    names = {p.name for p in imageio.list_images(folder)}
    assert "notes.png" in names and "café 日本 ñ.png" in names


def test_deleted_while_open(tmp_path: Path) -> None:
    """An image deleted after listing gives InputError naming it, not FileNotFoundError."""
    path = tmp_path / "gone.png"
    path.write_bytes(corpus.good_image_bytes())
    assert imageio.list_images(tmp_path) == [path]
    path.unlink()
    with pytest.raises(InputError, match="gone.png"):
        imageio.read_image(path)
    with pytest.raises(InputError, match="gone.png"):
        imageio.image_size(path)


def test_permission_denied_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unreadable file (simulated, since root reads everything): a clear message."""
    path = tmp_path / "private.png"
    path.write_bytes(corpus.good_image_bytes())
    real_open = open

    def deny(file, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", deny)
    with pytest.raises(InputError, match="permission denied") as info:
        imageio.read_image(path)
    assert "private.png" in str(info.value)


@pytest.mark.slow
def test_huge_image_reads(tmp_path: Path) -> None:
    """12,000 x 12,000 pixels: the size comes from the header, the pixels decode (432 MB)."""
    case = corpus.huge_image(tmp_path)
    assert case.path.stat().st_size < 1_000_000
    assert imageio.image_size(case.path) == (12_000, 12_000)
    arr = imageio.read_image(case.path)
    assert arr.shape == case.shape and int(arr[6000, 6000, 1]) == 90
    del arr


# ----- the corpus as a project folder ---------------------------------------------------------
@pytest.fixture
def corpus_project(tmp_path: Path) -> tuple[Path, dict[str, corpus.Case]]:
    folder = tmp_path / "images"
    cases = {c.name: c for c in corpus.image_cases(folder)}
    return folder, cases


def test_project_opens_folder_with_symlink_loop(tmp_path: Path) -> None:
    """One link pointing at itself must not stop the whole folder from opening."""
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(corpus.good_image_bytes())
    (folder / "loop.png").symlink_to("loop.png")
    with Project.open(folder) as project:
        assert [r.name for r in project.images()] == ["a.png"]


def test_project_on_corpus_folder(corpus_project: tuple[Path, dict[str, corpus.Case]]) -> None:
    """Opening lists the files; reading each bad one names it; the good ones read; twins reported."""
    folder, cases = corpus_project
    with Project.open(folder) as project:
        names = {r.name for r in project.images()}
        assert any("twin.jpg" in p and "same stem" in p for p in project.problems), project.problems
        for case in cases.values():
            rec = project.find(case.path.name)
            if case.path.name not in names or rec is None or rec.name != case.path.name:
                continue
            corpus.check(case, lambda p, i=rec.id: project.read_image(i))
            if case.expect == corpus.ERROR and case.problem != "truncated":
                corpus.check(case, lambda p, i=rec.id: project.image_shape(i))
        assert "notes.png" in names and "one pixel.png" in names and "café 日本 ñ.png" in names


def test_project_image_deleted_while_open(tmp_path: Path) -> None:
    """A file deleted while the project is open: a message naming it, its label kept."""
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes(corpus.good_image_bytes())
    schema = corpus.corpus_schema()
    with Project.open(folder, schema=schema) as project:
        rec = project.find("a.png")
        project.save_label(rec.id, np.ones((24, 32), np.uint8))
        label_before = project.label_path(rec.id).read_bytes()
        (folder / "a.png").unlink()
        with pytest.raises(InputError, match="a.png"):
            project.read_image(rec.id)
        project.sync()
        assert [r.name for r in project.images()] == ["b.png"]
        assert any("a.png" in p and "missing" in p for p in project.problems)
        assert project.label_path(rec.id).read_bytes() == label_before
    (folder / "a.png").write_bytes(corpus.good_image_bytes())
    with Project.open(folder) as project:  # the file is back: so is its label
        rec = project.find("a.png")
        assert rec.has_label and project.read_label(rec.id).max() == 1
