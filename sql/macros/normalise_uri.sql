-- normalise_uri(uri): one spelling per image address, so the lake can see that two sources
-- name the same image. Lower-cases the scheme, drops the fragment, "./" segments and repeated
-- slashes in the path, and sorts the non-empty query parameters ("?h=480&w=640" and
-- "?w=640&h=480&" are the same; "x?" is "x").
CREATE OR REPLACE MACRO normalise_uri(uri) AS
    regexp_replace(
        regexp_replace(
            regexp_replace(split_part(split_part(uri, '#', 1), '?', 1), '^[A-Za-z][A-Za-z0-9+.-]*:',
                           lower(regexp_extract(split_part(uri, '#', 1), '^([A-Za-z][A-Za-z0-9+.-]*:)', 1))),
            '/(\./)+', '/', 'g'),
        '([^:/])//+', '\1/', 'g')
    || CASE
        WHEN strpos(split_part(uri, '#', 1), '?') = 0 THEN ''
        ELSE coalesce('?' || nullif(array_to_string(list_sort(list_filter(
            string_split(split_part(split_part(uri, '#', 1), '?', 2), '&'), lambda p: p <> '')), '&'), ''), '')
    END
