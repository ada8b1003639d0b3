-- Customer order (M3 OOHEAD) with its lines (M3 OOLINE) -> canonical Order events: a multi-table
-- mapping. The bridge re-reads an order from the source whenever its header or one of its lines
-- changes (one read-only query per batch of changes), and publishes order.deleted for an order that
-- is gone or no longer matches WHERE. Attach with "mapper.sql": "order_lines.sql",
-- "mapper.entity": "Order". The lines' primary key holds the order key, so a line's delete names its
-- order even with PostgreSQL's default REPLICA IDENTITY.
SELECT TRIM(h.oaorno)                                  AS id,
       TRIM(h.oacuno)                                  AS customer_id,
       h.oaorst                                        AS status,
       TO_DATE(NULLIF(h.oaordt, 0)::text, 'YYYYMMDD')  AS order_date,
       h.oanetv                                        AS net_amount,
       COALESCE((SELECT json_agg(json_build_object('line_number', l.obponr,
                                                   'product_id',  TRIM(l.obitno),
                                                   'quantity',    l.obornq,
                                                   'unit_price',  l.obsapr,
                                                   'amount',      round(l.obornq * l.obsapr, 2),
                                                   'status',      l.oborst)
                                 ORDER BY l.obponr)
                 FROM m3.ooline l
                 WHERE l.obcono = h.oacono AND l.oborno = h.oaorno), '[]') AS lines
FROM m3.oohead h
WHERE h.oacono = 100 AND h.oaorst < '90'
