"""Real, decodable media made in pure Python: the pictures and videos of `archiver demo`.

Every file shows a `Scene` painted from a seed, so media are deterministic and varied without
any image library or video tool: `jpeg_image` (baseline JPEG), `png_image`, `webp_image`
(lossless WebP) and `mp4_video` (H.264 in MP4). Each encoder takes shortcuts that a smooth,
synthetic picture allows, and says which in its module; browsers decode all of them.
"""

from archiver.standin.encoders.jpeg import jpeg_image
from archiver.standin.encoders.lossless import png_image, webp_image
from archiver.standin.encoders.mp4 import mp4_video
from archiver.standin.encoders.scene import Disc, Scene

__all__ = ["Disc", "Scene", "jpeg_image", "mp4_video", "png_image", "webp_image"]
