-- A small legacy ERP schema in the style of 1990s ERP systems (M3/Movex-like naming):
-- cryptic upper-case-ish column names, CHAR padding, numeric YYYYMMDD dates, status codes.
CREATE SCHEMA m3;

CREATE TABLE m3.ocusma (            -- customer master
    okcono  smallint     NOT NULL,  -- company
    okcuno  char(10)     NOT NULL,  -- customer number
    okcunm  varchar(36),            -- customer name
    okstat  char(2)      DEFAULT '20',  -- status 10 = preliminary, 20 = definite, 90 = blocked
    okcscd  char(3),                -- country
    okcrlm  numeric(15,2) DEFAULT 0,  -- credit limit
    okrgdt  integer,                -- registration date YYYYMMDD
    oklmdt  timestamptz DEFAULT now(),
    PRIMARY KEY (okcono, okcuno)
);

CREATE TABLE m3.oohead (            -- customer order header
    oacono  smallint     NOT NULL,
    oaorno  char(10)     NOT NULL,  -- order number
    oacuno  char(10)     NOT NULL,
    oaorst  char(2)      DEFAULT '22',  -- lowest line status
    oaordt  integer,                -- order date YYYYMMDD
    oanetv  numeric(17,2) DEFAULT 0,  -- net value
    oatxt   text,                   -- free text, can be long
    PRIMARY KEY (oacono, oaorno)
);

CREATE TABLE m3.ooline (            -- customer order lines
    obcono  smallint     NOT NULL,
    oborno  char(10)     NOT NULL,
    obponr  integer      NOT NULL,  -- line number
    obitno  char(15),               -- item
    obornq  numeric(15,6),          -- ordered quantity
    obsapr  numeric(17,4),          -- sales price
    oborst  char(2)      DEFAULT '22',
    PRIMARY KEY (obcono, oborno, obponr)
);

CREATE TABLE m3.mitlog (            -- a log table without a primary key, as legacy systems have
    mlcono  smallint,
    mlitno  char(15),
    mltrqt  numeric(15,6),
    mlrgdt  integer
);
ALTER TABLE m3.mitlog REPLICA IDENTITY FULL;

INSERT INTO m3.ocusma (okcono, okcuno, okcunm, okstat, okcscd, okcrlm, okrgdt) VALUES
  (100, 'C00001', 'Nordic Timber AB', '20', 'SE', 50000, 19980312),
  (100, 'C00002', 'Alpine Tools GmbH', '20', 'DE', 25000, 20010907),
  (100, 'C00003', 'Lusitania Pescas Lda', '10', 'PT', 0, 20240101);
INSERT INTO m3.oohead (oacono, oaorno, oacuno, oaorst, oaordt, oanetv, oatxt) VALUES
  (100, '1000001', 'C00001', '22', 20241120, 1250.00, 'Deliver to gate 4');
INSERT INTO m3.ooline VALUES
  (100, '1000001', 1, 'PLANK-2X4', 100, 8.5, '22'),
  (100, '1000001', 2, 'NAILS-50MM', 20, 20, '22');
