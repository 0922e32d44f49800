"""Ingest: from FITS files to the catalog.

``_keywords`` (keyword aliases and capture-program rules, as data) → ``headers/`` (any header
normalised to a :class:`~darkflow.model.FrameMeta`, with ingestion reasons) → ``catalog``
(scanning files into the catalog DataFrame: eligibility, duplicates, nights and sessions).
Header bytes are read by :mod:`darkflow.io.fastheader`.
"""
