"""Image files and the files artstyle writes: reading, converting, writing, metadata.

Modules:

* :mod:`artstyle.files.read`: decoding image files into upright sRGB RGB images
  (pixel limit, format sniffing, EXIF orientation), with the help of
  :mod:`~artstyle.files.limits` (the pixel limit), :mod:`~artstyle.files.color_profile`
  (ICC profiles to sRGB) and :mod:`~artstyle.files.modes` (Pillow modes to 8-bit RGB).
* :mod:`artstyle.files.convert`: images from paths, PIL images and arrays; images to
  and from ``(1, 3, H, W)`` tensors; resizing.
* :mod:`artstyle.files.write`: saving images (PNG, TIFF, JPEG, WebP; 8 or 16 bits)
  and checking output paths, with :mod:`~artstyle.files.png16` and
  :mod:`~artstyle.files.tiff16` for 16-bit files.
* :mod:`artstyle.files.options`: the pixel limit, the output formats, bit depths and JPEG
  quality, and their checks, as plain values (no Pillow or numpy: the command line's
  flags are built and checked without them).
* :mod:`artstyle.files.metadata`: the JSON metadata stored with each output.
* :mod:`artstyle.files.atomic`: atomic file replacement.
* :mod:`artstyle.files.problems`: the one-line messages of file errors.

The package imports nothing of the engine: only :mod:`artstyle.errors`, numpy,
torch (for tensors), Pillow and tifffile.
"""
