"""Errors a user can cause and fix. The CLI prints their message, without a traceback."""


class ClothesExtractorError(Exception):
    """Base class: the message says what was expected, what came, and what to do."""


class DataError(ClothesExtractorError):
    """A data set, sample or image is missing, unreadable or not what it should be."""


class ConfigError(ClothesExtractorError):
    """An option value is invalid (a size not a multiple of 32, an unknown name, ...)."""


class CheckpointError(ClothesExtractorError):
    """A checkpoint is missing, corrupt or was not written by clothes-extractor."""


class WeightsUnavailableError(ClothesExtractorError):
    """Pretrained weights were asked for but are neither cached nor downloadable."""


class MissingDependencyError(ClothesExtractorError):
    """An optional extra (e.g. ``[onnx]``) is needed for what was asked and is not installed."""


class OutputError(ClothesExtractorError):
    """An output path cannot be written: no permission, a read-only or full disk, a file where a
    folder should be."""
