"""Geometry in pure numpy: COCO RLE (``rle``), mask <-> polygon (``masks``; tracing in
``contour``, simplification in ``simplify``, rasterization in ``raster``) and boxes (``boxes``).

Coordinates are image pixels, origin top-left, x right, y down; pixel ``(col c, row r)`` covers
``[c, c+1] x [r, r+1]``. Boxes are ``[x0, y0, x1, y1]``; polygons are lists of rings (outer ring
first, clockwise on screen; holes after, counter-clockwise).
"""
