"""Images decoded right: every pixel format against a reference conversion; corrupt only when undecodable."""

import numpy as np
import pytest
from PIL import Image

from albench.api.errors import DataError
from albench.data.datasets.source import check_decodable, decode_file

S = 6  # decoded at its own size: no resize, no crop, so pixels compare exactly


def _ramp(dtype, top):
    return (np.arange(S * S, dtype=np.float64).reshape(S, S) / (S * S - 1) * top).astype(dtype)


def test_16_bit_grayscale_png_scales_instead_of_saturating(tmp_path):
    a = _ramp(np.uint16, 65535)
    p = tmp_path / "g16.png"
    Image.fromarray(a).save(p)
    with Image.open(p) as im:
        assert im.mode.startswith("I")  # really stored and read as 16-bit
    want = np.round(a / 65535 * 255).astype(np.uint8)
    got = decode_file(p, S)
    assert np.array_equal(got, np.repeat(want[..., None], 3, -1))
    assert got.min() == 0 and got.max() == 255 and len(np.unique(got)) > 20  # not all white


def test_grayscale_and_1_bit_replicate_channels(tmp_path):
    a = _ramp(np.uint8, 255)
    Image.fromarray(a, "L").save(tmp_path / "l.png")
    assert np.array_equal(decode_file(tmp_path / "l.png", S), np.repeat(a[..., None], 3, -1))
    b = a > 127
    Image.fromarray(b).save(tmp_path / "b.png")
    assert np.array_equal(decode_file(tmp_path / "b.png", S)[..., 0], np.where(b, 255, 0))


def test_alpha_is_composited_over_white(tmp_path):
    rgb = np.zeros((S, S, 3), np.uint8)
    rgb[..., 0] = 200
    alpha = _ramp(np.uint8, 255)
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "a.png")
    al = alpha[..., None] / 255.0
    want = rgb * al + 255 * (1 - al)
    got = decode_file(tmp_path / "a.png", S).astype(np.float64)
    assert np.abs(got - want).max() <= 1.0  # PIL's compositing rounds
    la = np.dstack([np.full((S, S), 10, np.uint8), alpha])
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    got = decode_file(tmp_path / "la.png", S)[..., 0].astype(np.float64)
    assert np.abs(got - (10 * al[..., 0] + 255 * (1 - al[..., 0]))).max() <= 1.0


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (S, S))
    im.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    px = np.zeros((S, S), np.uint8)
    px[:, S // 2 :] = 1
    im.putdata(px.flatten().tolist())
    im.info["transparency"] = 0  # index 0 (black) is transparent
    im.save(tmp_path / "p.png", transparency=0)
    got = decode_file(tmp_path / "p.png", S)
    assert (got[:, : S // 2] == 255).all()  # transparent -> white, not black
    assert (got[:, S // 2 :] == [0, 0, 255]).all()


def test_cmyk_uses_the_separation_formula(tmp_path):
    rng = np.random.default_rng(0)
    cmyk = rng.integers(0, 256, (S, S, 4), dtype=np.uint8)
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "c.tif")
    c, m, y, k = (cmyk[..., i] / 255.0 for i in range(4))
    want = np.round(np.stack([(1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k)], -1) * 255)
    assert np.array_equal(decode_file(tmp_path / "c.tif", S), want.astype(np.uint8))


def test_plain_rgb_is_unchanged(tmp_path):
    a = np.random.default_rng(1).integers(0, 256, (S, S, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "x.png")
    assert np.array_equal(decode_file(tmp_path / "x.png", S), a)


def test_permission_and_size_problems_are_named_not_called_corrupt(tmp_path, monkeypatch):
    import PIL.Image

    (tmp_path / "dir.png").mkdir()
    with pytest.raises(DataError, match=r"it is a folder, not an image file"):
        decode_file(tmp_path / "dir.png", S)
    big = tmp_path / "big.png"
    Image.new("RGB", (64, 64)).save(big)
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(DataError) as err:
        decode_file(big, S)
    assert str(err.value).startswith(f"Image {big} is too large to decode safely (") and "corrupt" not in str(err.value)
    with pytest.raises(DataError, match="too large"):
        check_decodable(big)  # never silently skipped as corrupt
    monkeypatch.undo()

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(PIL.Image, "open", denied)
    with pytest.raises(DataError) as err:
        decode_file(big, S)
    assert str(err.value) == f"Cannot read image {big}: permission denied. Make the file readable (chmod a+r)."


def test_undecodable_bytes_are_corrupt(tmp_path):
    p = tmp_path / "x.jpg"
    p.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    with pytest.raises(DataError, match=r"The file is corrupt or not an image"):
        decode_file(p, S)
    assert check_decodable(p) is not None
