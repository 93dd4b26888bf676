"""presidio-image-redactor, imported without the pydicom deprecation notice its import raises (not for users)."""

import warnings

with warnings.catch_warnings():  # it imports pydicom.pixel_data_handlers, deprecated in pydicom 3
    warnings.simplefilter("ignore", DeprecationWarning)
    from presidio_image_redactor import OCR, ImageAnalyzerEngine

__all__ = ["OCR", "ImageAnalyzerEngine"]
