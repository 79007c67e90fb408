"""``artstyle video``: clips stylized with temporal consistency (Ruder et al. 2016).

* :mod:`~artstyle.video.flow`: optical flow, where it can be trusted, warping along it;
* :mod:`~artstyle.video.job`: what a video job is, and its defaults;
* :mod:`~artstyle.video.work`: the work folder of finished frames, and ``--resume``;
* :mod:`~artstyle.video.run`: :func:`run_video`, every frame a job of the run frame.

Video files are read and written in :mod:`artstyle.files.video`. Needs the ``[video]``
extra (PyAV, OpenCV).
"""
