-- stable_hash64(s): the project's one stable 64-bit hash of a text, as UBIGINT: the low 64 bits
-- of md5_number(s), which reads the md5 digest little-endian, so these are the digest's first
-- 8 bytes read little-endian. Python computes the same number with
-- vprim.assets.contracts.hashing.md5_64 (tests/lake checks the two agree). md5 is a fixed
-- algorithm on the UTF-8 bytes, unlike DuckDB's hash(), which may change between releases:
-- contract keys (sample_id, the cap order, the label bucket) use this. A key of several parts
-- joins them with chr(31), the unit separator, as md5_64 joins them with "\x1f":
-- stable_hash64(concat_ws(chr(31), source_id, image_id, label)) = md5_64(source_id, image_id, label)
-- (concat_ws skips a NULL part; the lake's key columns are never NULL).
CREATE OR REPLACE MACRO stable_hash64(s) AS
    (md5_number(s) & 18446744073709551615::UHUGEINT)::UBIGINT;
