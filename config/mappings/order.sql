-- Customer order header (M3 OOHEAD) -> canonical Order events, header fields only: evaluated by the
-- bridge per change. order_lines.sql adds the lines (a multi-table mapping, re-read from the source).
-- Business key: the order number.
SELECT TRIM(oaorno)                                  AS id,
       TRIM(oacuno)                                  AS customer_id,
       oaorst                                        AS status,
       TO_DATE(NULLIF(oaordt, 0)::text, 'YYYYMMDD')  AS order_date,
       oanetv                                        AS net_amount,
       oatxt                                         AS note
FROM m3.oohead
WHERE oacono = 100 AND oaorst < '90'
