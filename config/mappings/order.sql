-- Customer order header (M3 OOHEAD) -> canonical Order events (header fields; lines need a
-- multi-table mapping, which is not supported yet). Business key: the order number.
SELECT TRIM(oaorno)                                  AS id,
       TRIM(oacuno)                                  AS customer_id,
       oaorst                                        AS status,
       TO_DATE(NULLIF(oaordt, 0)::text, 'YYYYMMDD')  AS order_date,
       oanetv                                        AS net_amount,
       oatxt                                         AS note
FROM m3.oohead
WHERE oacono = 100 AND oaorst < '90'
