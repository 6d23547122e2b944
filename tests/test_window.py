import numpy as np
import pytest

from prep.window import (
    Window,
    affine_to_output,
    fill_gaps,
    fixed_window,
    integer_window,
    jitter,
    padding,
    smooth,
    track_windows,
    window_for_face,
)


def test_window_places_face_where_preset_says():
    w = window_for_face(cx=300, cy=200, face_size=100, face_fraction=0.5, face_y=0.4)
    assert w.side == pytest.approx(200)
    assert w.x + w.side / 2 == pytest.approx(300)  # centred horizontally
    assert w.y + 0.4 * w.side == pytest.approx(200)  # face centre at 40% of the height


def test_window_is_not_shifted_into_the_frame_but_padded():
    w = window_for_face(cx=20, cy=30, face_size=50, face_fraction=0.5, face_y=0.5)
    assert w.x < 0 and w.y < 0  # never moved to stay inside
    p = padding(w, 640, 480)
    assert p.left == pytest.approx(30) and p.top == pytest.approx(20)
    assert p.right == 0 and p.bottom == 0
    assert p.area_fraction == pytest.approx(1 - (70 * 80) / (100 * 100))


def test_padding_zero_inside_and_full_outside():
    assert not padding(Window(10, 10, 100), 200, 200).any
    assert padding(Window(500, 500, 100), 200, 200).area_fraction == pytest.approx(1.0)


@pytest.mark.parametrize("win", [Window(10.3, 20.7, 101.2), Window(-5.5, 3.2, 99.9), Window(0, 0, 3)])
def test_integer_window_even_and_centre_kept(win):
    x, y, side = integer_window(win)
    assert x % 2 == 0 and y % 2 == 0 and side % 2 == 0
    assert abs((x + side / 2) - (win.x + win.side / 2)) <= 1.5
    assert abs((y + side / 2) - (win.y + win.side / 2)) <= 1.5


def test_fill_gaps_interpolates_and_holds_ends():
    out = fill_gaps([2, 6], [[0.0], [4.0]], 9)[:, 0]
    assert out.tolist() == [0, 0, 0, 1, 2, 3, 4, 4, 4]


def test_smooth_keeps_a_steady_motion_and_removes_noise():
    ramp = np.linspace(0, 100, 200)[:, None]
    assert np.allclose(smooth(ramp, 5)[20:-20], ramp[20:-20])  # zero phase: no lag
    rng = np.random.default_rng(0)
    noisy = ramp + rng.normal(0, 2, ramp.shape)
    assert np.std(np.diff(smooth(noisy, 5)[:, 0], 2)) < 0.1 * np.std(np.diff(noisy[:, 0], 2))


def test_local_quadratic_follows_a_turn_better_than_a_blur():
    t = np.arange(100, dtype=float)
    path = (np.abs(t - 50) * 2.0)[:, None]  # a head that moves and comes back
    err_blur = np.abs(smooth(path, 5) - path)[40:60].max()
    err_quad = np.abs(smooth(path, 5, degree=2) - path)[40:60].max()
    assert err_quad < 0.7 * err_blur


def test_smooth_short_clip():
    assert smooth(np.array([[1.0], [2.0]]), 10).shape == (2, 1)
    assert smooth(np.array([[1.0]]), 10).tolist() == [[1.0]]


def test_track_windows_follow_the_face_without_jitter():
    rng = np.random.default_rng(1)
    n = 250
    t = np.arange(n)
    true_c = np.stack([300 + 60 * np.sin(t / 40), 400 + 30 * np.cos(t / 55)], axis=1)
    noisy_c = true_c + rng.normal(0, 2.0, true_c.shape)  # detector noise, ~2% of the face
    sizes = 100 + rng.normal(0, 2.0, n)
    raw = track_windows(noisy_c, sizes, 0.5, 0.5, 0, 0)
    win = track_windows(noisy_c, sizes, 0.5, 0.5, 5, 10)
    assert jitter(win) < 0.001  # under half a pixel of acceleration at 512 px
    assert jitter(win) < jitter(raw) / 10
    centre = win[:, :2] + win[:, 2:3] / 2
    assert np.max(np.hypot(*(centre - true_c).T) / win[:, 2]) < 0.03  # stays on the face


def test_fixed_window_is_robust_to_outliers():
    centers = np.array([[100, 100]] * 20 + [[400, 400]])
    sizes = np.array([50] * 20 + [200])
    w = fixed_window(centers, sizes, 0.5, 0.5)
    assert (w.x + w.side / 2, w.side) == (100, 100)


def test_affine_maps_window_onto_output():
    img = np.zeros((200, 300), np.uint8)
    img[50:150, 100:200] = 255  # a square exactly filling the window below
    import cv2

    m = affine_to_output(Window(100, 50, 100), 64)
    out = cv2.warpAffine(img, m, (64, 64), flags=cv2.INTER_LINEAR)
    assert out[1:-1, 1:-1].min() == 255 and out.mean() > 250
