-- to_999(v, side): a pixel coordinate on an image side of `side` pixels on the 0..999 grid:
-- round(v / side * 999), clamped to 0..999. DuckDB's round rounds half away from zero
-- (4.5 -> 5), the rule of vprim.assets.contracts.coords.to_999, which the camps use;
-- tests/camps/test_coords.py holds the two together, on exact ties included.
CREATE OR REPLACE MACRO to_999(v, side) AS
    least(999, greatest(0, round(v / side * 999)))::INTEGER;
