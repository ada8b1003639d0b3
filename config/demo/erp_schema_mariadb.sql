-- The sample legacy ERP schema of erp_schema.sql, as a MySQL/MariaDB ERP would hold it (database erp).
-- customer master, in latin1 as legacy systems often are
CREATE TABLE ocusma (
    okcono  smallint      NOT NULL,
    okcuno  char(10)      NOT NULL,
    okcunm  varchar(36),
    okstat  char(2)       DEFAULT '20',  -- status 10 = preliminary, 20 = definite, 90 = blocked
    okcscd  char(3),
    okcrlm  decimal(15,2) DEFAULT 0,
    okrgdt  int,                   -- registration date YYYYMMDD
    oklmdt  timestamp(6)  NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (okcono, okcuno)
) DEFAULT CHARSET=latin1;

CREATE TABLE oohead (               -- customer order header
    oacono  smallint      NOT NULL,
    oaorno  char(10)      NOT NULL,
    oacuno  char(10)      NOT NULL,
    oaorst  char(2)       DEFAULT '22',
    oaordt  int,
    oanetv  decimal(17,2) DEFAULT 0,
    oatxt   text,
    PRIMARY KEY (oacono, oaorno)
) DEFAULT CHARSET=utf8mb4;

CREATE TABLE ooline (               -- customer order lines
    obcono  smallint      NOT NULL,
    oborno  char(10)      NOT NULL,
    obponr  int           NOT NULL,
    obitno  char(15),
    obornq  decimal(15,6),
    obsapr  decimal(17,4),
    oborst  char(2)       DEFAULT '22',
    PRIMARY KEY (obcono, oborno, obponr)
) DEFAULT CHARSET=utf8mb4;

CREATE TABLE mitlog (               -- a log table without a primary key
    mlcono  smallint,
    mlitno  char(15),
    mltrqt  decimal(15,6),
    mlrgdt  int
);

INSERT INTO ocusma (okcono, okcuno, okcunm, okstat, okcscd, okcrlm, okrgdt) VALUES
  (100, 'C00001', 'Nordic Timber AB', '20', 'SE', 50000, 19980312),
  (100, 'C00002', 'Alpine Tools GmbH', '20', 'DE', 25000, 20010907),
  (100, 'C00003', 'Lusitânia Pescas Lda', '10', 'PT', 0, 20240101);
INSERT INTO oohead (oacono, oaorno, oacuno, oaorst, oaordt, oanetv, oatxt) VALUES
  (100, '1000001', 'C00001', '22', 20241120, 1250.00, 'Deliver to gate 4');
INSERT INTO ooline VALUES
  (100, '1000001', 1, 'PLANK-2X4', 100, 8.5, '22'),
  (100, '1000001', 2, 'NAILS-50MM', 20, 20, '22');
