"""The image stage's building blocks: pure functions, no Dagster (docs/FORMATS.md, "images").

- :mod:`.probe`: every real image probed once (header: status, stored size, EXIF orientation,
  format; plus a pHash), cached by (uri, size, mtime_ns) in an ``IMAGE_PROBE_SCHEMA`` table.
- :mod:`.orientation`: displayed sizes, the stored-to-displayed coordinate map for boxes and
  polygons, and the EXIF size rule, vectorised.
- :mod:`.phash`: the 64-bit perceptual hash from a reduced-size decode.
- :mod:`.neardup`: exact near-duplicate pairs and groups within a Hamming radius, by
  multi-index hashing (never all pairs).
- :mod:`.bench`: their figures (``make bench``: ``images`` and ``neardup``).
"""
