-- Issue 10: the statement of responsibility as the record gives it (245 $c, JAPAN/MARC's
-- 責任表示), from which pages and mails show names with their roles (「モンゴメリ 著；掛川恭子
-- 訳」), and the NDC class number (MARC 084 with $2 njb*/ndc*, JAPAN/MARC 677), whose first
-- digit is a search facet. Both '' where the record has none.
ALTER TABLE titles ADD COLUMN responsibility TEXT NOT NULL DEFAULT '';
ALTER TABLE titles ADD COLUMN ndc TEXT NOT NULL DEFAULT '';
