"""PII filtering of site records: text (Presidio), images (pixels only, OCR), DICOM; see pipeline.PiiFilter."""

import logging

# pydicom also logs the deprecation notice that importing presidio-image-redactor raises (see redactor.py).
logging.getLogger("pydicom").addFilter(lambda record: "pydicom.pixel_data_handlers" not in record.getMessage())
