-- Customer master (M3 OCUSMA) -> canonical Customer events.
-- Attach to a FileStreamSink with "mapper.sql": "../mappings/customer.sql", "mapper.entity": "Customer".
-- Membership: definite (20) and credit-hold (30) customers of company 100; a customer set to 90
-- (blocked) or deleted becomes customer.deleted. Moving from preliminary (10) to definite (20) is
-- published as customer.approved (needs REPLICA IDENTITY FULL for the previous image).
SELECT TRIM(okcuno)                                       AS id,
       okcunm                                             AS name,
       okstat                                             AS status,
       okstat = '20'                                      AS active,
       TRIM(okcscd)                                       AS country,
       okcrlm                                             AS credit_limit,
       TO_DATE(NULLIF(okrgdt, 0)::text, 'YYYYMMDD')       AS registered_on,
       oklmdt                                             AS updated_at,
       CASE WHEN old.okstat = '10' AND okstat = '20' THEN 'customer.approved' END AS _type
FROM m3.ocusma
WHERE okcono = 100 AND okstat IN ('20', '30')
