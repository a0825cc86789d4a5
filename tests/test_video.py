"""Evaluation videos (``--data.init_args.record_video true``): real envs rendered offscreen, real MP4
files decoded again with ffmpeg, the real offline W&B logger."""

import os
import re
import shutil
import subprocess
import sys

import imageio_ffmpeg
import numpy as np
import pytest

from lit_rl.data import RolloutDataModule
from lit_rl.envs import EnvConfig
from lit_rl.training.video import default_mujoco_gl
from tests.conftest import ROOT, SMOKE, ok, run_cli

MYO_SMOKE = ROOT / "configs" / "smoke" / "dep_mpo_myolegwalk.yaml"
RECORD = ["--data.init_args.record_video", "true"]
PENDULUM_FRAMES = 51  # the reset frame and one per step of a 50-step episode (20 Hz control: every step)

# MuJoCo needs an offscreen OpenGL (OSMesa or EGL) unless a display or MUJOCO_GL is set up.
NO_MUJOCO_GL = not (os.environ.get("MUJOCO_GL") or os.environ.get("DISPLAY") or default_mujoco_gl())
needs_mujoco_gl = pytest.mark.skipif(
    NO_MUJOCO_GL,
    reason="no offscreen OpenGL for MuJoCo: libOSMesa is missing (`make test` installs libosmesa6 when run as "
    "root; otherwise `sudo apt-get install libosmesa6`)",
)


def decode(path):
    """Every frame of an MP4, decoded by ffmpeg, and its metadata."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    return meta, [np.frombuffer(frame, np.uint8).reshape(height, width, 3) for frame in reader]


def assert_video(path, frames: int, size: tuple[int, int], fps: float) -> None:
    meta, decoded = decode(path)
    assert meta["codec"] == "h264"
    assert (meta["size"], meta["fps"]) == (size, pytest.approx(fps))
    assert len(decoded) == frames
    # The env moves: the picture changes from frame to frame, not just from first to last.
    changes = [np.abs(a.astype(np.int16) - b).mean() for a, b in zip(decoded, decoded[1:], strict=False)]
    assert np.abs(decoded[0].astype(np.int16) - decoded[-1]).mean() > 0.5
    assert sum(change > 0.05 for change in changes) >= len(changes) // 2


def wandb_videos(run_dir):
    return sorted((run_dir / "wandb").glob("offline-run-*/files/media/videos/test/video_*.mp4"))


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory):
    """The 400-step Pendulum smoke run with record_video: evaluations at 200 and 400 env steps."""
    working_dir = tmp_path_factory.mktemp("runs")
    ok(run_cli("fit", "--config", str(SMOKE), "--working_dir", str(working_dir), "--name", "smoke", *RECORD))
    return working_dir / "smoke"


def test_fit_records_the_first_test_episode_of_each_evaluation(recorded_run):
    videos = recorded_run / "videos"
    assert sorted(p.name for p in videos.iterdir()) == ["200.mp4", "400.mp4"]  # no partial .tmp.mp4 left
    for path in videos.iterdir():
        assert_video(path, PENDULUM_FRAMES, (500, 500), fps=20)
    # W&B (offline) keeps a copy of each file in the run's media
    logged = wandb_videos(recorded_run)
    assert sorted(p.read_bytes() for p in logged) == sorted(p.read_bytes() for p in videos.iterdir())


def test_validate_a_checkpoint_writes_videos(recorded_run, tmp_path):
    run_dir = tmp_path / "smoke"
    shutil.copytree(recorded_run, run_dir, ignore=shutil.ignore_patterns("videos", "wandb"))
    extra = ["--ckpt_path", "last", *RECORD, "--data.init_args.video.episodes", "2"]
    ok(run_cli("validate", "--config", str(SMOKE), "--working_dir", str(tmp_path), "--name", "smoke", *extra))
    [evaluation] = (run_dir / "eval").iterdir()  # an evaluation writes to its own folder, not the run's videos/
    assert not (run_dir / "videos").exists()
    videos = evaluation / "videos"
    # named after the checkpoint's env steps; the second test episode starts from another seed
    assert sorted(p.name for p in videos.iterdir()) == ["400-1.mp4", "400.mp4"]
    for path in videos.iterdir():
        assert_video(path, PENDULUM_FRAMES, (500, 500), fps=20)
    assert (videos / "400.mp4").read_bytes() == (recorded_run / "videos" / "400.mp4").read_bytes()
    assert (videos / "400.mp4").read_bytes() != (videos / "400-1.mp4").read_bytes()
    assert len(wandb_videos(evaluation)) == 2


@needs_mujoco_gl
def test_myolegwalk_episode_video(tmp_path):
    # No checkpoint: the untrained policy of the DEP-MPO smoke config, one 40-step test episode.
    args = ["--config", str(MYO_SMOKE), "--working_dir", str(tmp_path), "--name", "myo", "--trainer.logger", "false"]
    result = ok(run_cli("validate", *args, *RECORD))
    length = int(float(re.search(r"test/episode_length\W+([\d.]+)", result.stdout).group(1)))
    assert 0 < length <= 40
    # 100 Hz control, max_fps 30: every 4th step is rendered and the video plays in real time at 25 fps
    [evaluation] = (tmp_path / "myo" / "eval").iterdir()
    assert_video(evaluation / "videos" / "0.mp4", 1 + length // 4, (640, 480), fps=25)


@needs_mujoco_gl
def test_a_machine_that_cannot_render_fails_naming_what_to_install():
    # GLFW needs a display: without one, recording must fail at setup, not silently skip.
    script = (
        "from lit_rl.envs import EnvConfig, make_env\n"
        "from lit_rl.training.video import VideoRecorder, rendering_config\n"
        "env = make_env(rendering_config(EnvConfig('myoLegWalk-v0', imports=['myosuite'])))\n"
        "VideoRecorder().check(env, seed=0)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(MUJOCO_GL="glfw", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "could not render myoLegWalk-v0 offscreen (MUJOCO_GL='glfw')" in result.stderr
    assert "apt-get install libosmesa6" in result.stderr


def test_recording_is_off_by_default_and_needs_a_test_episode():
    assert RolloutDataModule(EnvConfig("Pendulum-v1")).video is None
    with pytest.raises(ValueError, match="record_video needs test_episodes >= 1"):
        RolloutDataModule(EnvConfig("Pendulum-v1"), test_episodes=0, record_video=True)
