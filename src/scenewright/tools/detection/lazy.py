"""A detector verifier named by ``--detector`` and ``--clip``, checked at once, loaded on first use."""

from __future__ import annotations

import threading

from scenewright.tools.detection.verify import DetectorVerifier


class LazyDetectorVerifier:
    """A :class:`DetectorVerifier` built from ``--detector`` and ``--clip`` when first needed."""

    def __init__(self, detector: str, clip: str | None = None, device: str | None = None) -> None:
        from scenewright.tools.detection.color import resolve_clip
        from scenewright.tools.detection.detectors import resolve_detector

        self.spec = resolve_detector(detector)  # a bad path fails now, before any render
        self.clip = resolve_clip(clip) if clip is not None else None
        self.device = device
        self._built: DetectorVerifier | None = None
        self._lock = threading.Lock()

    def get(self) -> DetectorVerifier:
        with self._lock:
            if self._built is None:
                from scenewright.tools.detection.color import DEFAULT_CLIP, ClipColorScorer
                from scenewright.tools.detection.detectors import load_detector

                clip, device = self.clip or DEFAULT_CLIP, self.device

                def colors() -> ClipColorScorer:
                    return ClipColorScorer.from_pretrained(clip, device)

                self._built = DetectorVerifier(load_detector(self.spec, device), colors)
            return self._built
