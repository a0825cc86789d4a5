"""Evaluation videos: render test episodes offscreen, write ``<run_dir>/videos/<env_steps>.mp4``
and log them to W&B.

Switched on with the DataModule's ``record_video`` (``--data.init_args.record_video true``), off by
default. MuJoCo envs (MyoSuite) render with OpenGL; without a display that needs EGL (a GPU) or
OSMesa (software, ``apt-get install libosmesa6``), chosen with ``MUJOCO_GL`` before mujoco is first
imported (see ``configure_rendering``). Classic-control envs (Pendulum) render with pygame.
"""

from __future__ import annotations

import ctypes.util
import glob
import logging
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from lit_rl.training.files import replaced_atomically

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "MuJoCo/MyoSuite envs need an offscreen OpenGL: OSMesa (CPU, `apt-get install libosmesa6`, then "
    "MUJOCO_GL=osmesa) or EGL with a GPU driver (MUJOCO_GL=egl); classic-control envs such as Pendulum "
    'need pygame (`pip install "gymnasium[classic-control]"`). MUJOCO_GL must be set before mujoco is '
    "first imported."
)


@dataclass
class VideoConfig:
    """How evaluation episodes are recorded (used when the DataModule's ``record_video`` is on).

    Args:
        episodes: the first this many test episodes of each evaluation are recorded.
        max_fps: render every k-th env step, with the smallest k that plays the video in real time
            at no more than this many frames per second (k from the env's ``dt``, e.g. myoLegWalk's
            100 Hz control gives k = 4 and 25 fps at the default 30).
        every: render every this many env steps instead (the video still plays in real time).
        shadows: MuJoCo shadows and reflections; off by default because they make software
            rendering (OSMesa) about 5 times slower.
    """

    episodes: int = 1
    max_fps: float = 30.0
    every: int | None = None
    shadows: bool = False

    def __post_init__(self):
        if self.episodes < 1:
            raise ValueError(f"video.episodes must be >= 1, got {self.episodes}")
        if self.max_fps <= 0:
            raise ValueError(f"video.max_fps must be > 0, got {self.max_fps}")
        if self.every is not None and self.every < 1:
            raise ValueError(f"video.every must be >= 1 (or null), got {self.every}")


def default_mujoco_gl() -> str | None:
    """The MuJoCo OpenGL backend to use offscreen when the user chose none: ``None`` with a display
    (MuJoCo's default, GLFW, works there), ``egl`` on a GPU machine, ``osmesa`` where libOSMesa is
    installed, else ``None`` (nothing found: rendering a MuJoCo env will fail, see ``INSTALL_HINT``)."""
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    gpu = os.path.exists("/dev/nvidiactl") or glob.glob("/dev/dri/renderD*")
    if gpu and ctypes.util.find_library("EGL"):
        return "egl"
    if ctypes.util.find_library("OSMesa"):
        return "osmesa"
    return None


def configure_rendering() -> None:
    """Set ``MUJOCO_GL`` (and PyOpenGL's platform) for offscreen rendering unless the user did.

    Called when a DataModule with ``record_video`` is built, before it makes its first env: mujoco
    reads ``MUJOCO_GL`` once, when it is first imported. Env worker processes inherit it."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # pygame.init() opens audio: ALSA noise without a sound card
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # rgb_array needs no window; quiets SDL's probing
    if os.environ.get("MUJOCO_GL"):
        return
    platform = os.environ.get("PYOPENGL_PLATFORM", "").lower()
    backend = platform if platform in ("egl", "osmesa") else default_mujoco_gl()
    if backend is None:
        return
    if "mujoco" in sys.modules:
        log.warning(
            "mujoco was imported before lit_rl could set MUJOCO_GL=%s for offscreen rendering; if rendering "
            "fails, set MUJOCO_GL=%s in the environment",
            backend,
            backend,
        )
    os.environ["MUJOCO_GL"] = backend


def rendering_config(config):
    """The env config with ``render_mode="rgb_array"`` (an ``EnvConfig``; a copy, the original is unchanged)."""
    from dataclasses import replace

    return replace(config, make_kwargs={**config.make_kwargs, "render_mode": "rgb_array"})


def _mujoco_gl_in_use() -> str:
    module = sys.modules.get("mujoco.rendering.classic.gl_context")
    used = getattr(module, "_MUJOCO_GL", None)
    return f"MUJOCO_GL={used or os.environ.get('MUJOCO_GL', '')!r}"


def render(env: gym.Env) -> np.ndarray:
    """One ``[H, W, 3]`` uint8 frame, or an error that says what to install."""
    env_id = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    try:
        frame = env.render()
    except Exception as error:  # noqa: BLE001 - GL and pygame failures come as anything
        raise RuntimeError(
            f"record_video: could not render {env_id} offscreen ({_mujoco_gl_in_use()}): "
            f"{type(error).__name__}: {error}. {INSTALL_HINT}"
        ) from error
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] not in (3, 4):
        got = type(frame).__name__ if not isinstance(frame, np.ndarray) else f"an array of shape {frame.shape}"
        raise RuntimeError(
            f"record_video: {env_id}.render() returned {got}, not an RGB image; the env must support "
            "render_mode='rgb_array'"
        )
    return np.ascontiguousarray(frame[..., :3], dtype=np.uint8)


def _set_mujoco_shadows(env: gym.Env, on: bool) -> None:
    # Gymnasium's MujocoRenderer (also used by MyoSuite) keeps its scene after the first render.
    # A speed-up only: envs that render otherwise are left alone.
    viewer = getattr(getattr(env.unwrapped, "_mujoco_renderer", None), "viewer", None)
    scene = getattr(viewer, "scn", None)
    if scene is None:
        return
    import mujoco

    scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = on
    scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = on


class VideoRecorder:
    """Records test episodes of one env into MP4 files (see ``VideoConfig``)."""

    def __init__(self, config: VideoConfig | None = None):
        self.config = config or VideoConfig()

    def check(self, env: gym.Env, seed: int) -> None:
        """Render once now, so a machine that cannot render fails before training, not at the
        first evaluation; also sets the scene options."""
        env.reset(seed=seed)
        render(env)
        _set_mujoco_shadows(env, self.config.shadows)

    def step_and_fps(self, env: gym.Env) -> tuple[int, float]:
        """Render every k-th step, and the frame rate that plays that in real time."""
        dt = getattr(env.unwrapped, "dt", None)
        rate = 1.0 / float(dt) if dt else float(env.metadata.get("render_fps") or self.config.max_fps)
        every = self.config.every or max(1, math.ceil(rate / self.config.max_fps - 1e-9))
        return every, rate / every

    def start(self, env: gym.Env, path: Path) -> EpisodeVideo:
        """Begin a video of the episode that ``env`` was just reset for."""
        every, fps = self.step_and_fps(env)
        return EpisodeVideo(path, render(env), every, fps)


class EpisodeVideo:
    """One episode's video, streamed to ffmpeg (frames are not kept in memory) into
    ``<name>.tmp.mp4`` and renamed to ``path`` by ``finish``, so ``path`` is always a whole video."""

    def __init__(self, path: Path, first_frame: np.ndarray, every: int, fps: float):
        import imageio_ffmpeg

        self.path, self.every, self.fps = Path(path), every, fps
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f"{self.path.stem}.tmp.mp4")  # ffmpeg picks the format by extension
        self._shape = first_frame.shape
        self._steps = 0
        self.frames = 0
        self._writer = imageio_ffmpeg.write_frames(
            str(self._tmp),
            (self._shape[1], self._shape[0]),
            fps=fps,
            macro_block_size=2,  # yuv420p needs even sizes; 2 avoids rescaling 500x500 Pendulum frames
            ffmpeg_log_level="error",
            output_params=["-movflags", "+faststart"],  # playable while streaming, e.g. in a browser
        )
        self._writer.send(None)
        self._write(first_frame)

    def _write(self, frame: np.ndarray) -> None:
        if frame.shape != self._shape:
            raise RuntimeError(f"record_video: the env's frame size changed from {self._shape} to {frame.shape}")
        self._writer.send(frame)
        self.frames += 1

    def capture(self, env: gym.Env) -> None:
        """Call after each env step: renders every ``every``-th step."""
        self._steps += 1
        if self._steps % self.every == 0:
            self._write(render(env))

    def finish(self) -> Path:
        writer, self._writer = self._writer, None
        with replaced_atomically(self.path, self._tmp):
            writer.close()  # waits for ffmpeg
        return self.path

    def abort(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()
            self._tmp.unlink(missing_ok=True)

    def __del__(self):
        # An evaluation interrupted mid-episode: stop ffmpeg and leave no partial file behind.
        try:
            self.abort()
        except Exception:  # noqa: BLE001, S110 - interpreter shutdown
            pass


def video_path(run_dir: str | Path, env_steps: int, episode: int) -> Path:
    """``<run_dir>/videos/<env_steps>.mp4`` for the first recorded episode, ``<env_steps>-<i>.mp4`` after."""
    name = f"{env_steps}.mp4" if episode == 0 else f"{env_steps}-{episode}.mp4"
    return Path(run_dir) / "videos" / name


def log_video(trainer, path: Path, env_steps: int, episode: int) -> None:
    """Log the file to every W&B logger of the trainer as ``test/video`` (offline runs keep it too)."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            caption = f"env step {env_steps}, test episode {episode}"
            logger.log_video("test/video", [str(path)], step=trainer.global_step, caption=[caption])
