-- md5_permille(s): md5_number(s) % 1000, the image's place in 0..999 for the train/holdout
-- split. Same value, computed on the two 64-bit halves: DuckDB's UHUGEINT modulo costs ~3 us
-- a row, shifts and masks almost nothing. 2^64 = 616 (mod 1000).
CREATE OR REPLACE MACRO md5_permille(s) AS
    ((md5_number(s) >> 64)::UBIGINT % 1000 * 616
     + (md5_number(s) & 18446744073709551615::UHUGEINT)::UBIGINT % 1000) % 1000;
