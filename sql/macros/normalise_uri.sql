-- normalise_uri(uri): one spelling per image address, so the lake can see that two sources
-- name the same image. Lower-cases the scheme, drops the fragment, "./" segments and repeated
-- slashes in the path, and sorts the non-empty query parameters ("?h=480&w=640" and
-- "?w=640&h=480&" are the same; "x?" is "x").
--
-- normalise_uri_general is the rule. normalise_uri gives the same result, with a fast path for
-- the common address that the rule leaves unchanged but for the order of its query: one
-- regular-expression test, then string positions (no lists: split_part builds one, and the
-- rule costs ~2 us a row). The fast path takes "scheme://authority/seg/seg?a&b": a lower-case
-- scheme, the "//" after it, then non-empty segments other than "." (so no "/./" and no
-- repeated slash), no '#', '&' only in the query, one '?' at most, and a query that is empty,
-- one parameter, or two non-empty ones (sorted with least/greatest). Anything else takes
-- normalise_uri_general; tests/lake checks the two agree on adversarial addresses.
CREATE OR REPLACE MACRO normalise_uri_general(uri) AS
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
    END;

CREATE OR REPLACE MACRO normalise_uri(uri) AS
    CASE
        WHEN NOT regexp_full_match(uri,
            '[a-z][a-z0-9+.-]*://([^/#?&.][^/#?&]*)?(/([^/#?&.][^/#?&]*|\.[^/#?&]+))*(\?([^#?&]*|[^#?&]+&[^#?&]+))?')
            THEN normalise_uri_general(uri)
        WHEN strpos(uri, '&') > 0  -- "path?a&b" -> "path?" least(a, b) "&" greatest(a, b)
            THEN left(uri, strpos(uri, '?'))
                 || least(substr(uri, strpos(uri, '?') + 1, strpos(uri, '&') - strpos(uri, '?') - 1),
                          substr(uri, strpos(uri, '&') + 1))
                 || '&'
                 || greatest(substr(uri, strpos(uri, '?') + 1, strpos(uri, '&') - strpos(uri, '?') - 1),
                             substr(uri, strpos(uri, '&') + 1))
        WHEN strpos(uri, '?') = length(uri) THEN left(uri, length(uri) - 1)  -- "path?"
        ELSE uri
    END;
