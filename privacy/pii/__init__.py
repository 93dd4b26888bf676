"""PII filtering of site records: text (Presidio), images (pixels only, OCR), DICOM; see pipeline.PiiFilter."""
