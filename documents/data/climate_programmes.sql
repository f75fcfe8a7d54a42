-- Sample figures for the Lakeshore Region climate programmes (fictional, written for Runlane).
CREATE TABLE programmes (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    sector TEXT NOT NULL,
    lead_agency TEXT NOT NULL,
    start_year INTEGER NOT NULL,
    end_year INTEGER NOT NULL,
    document TEXT NOT NULL
);
CREATE TABLE budgets (
    programme_id INTEGER NOT NULL REFERENCES programmes (id),
    year INTEGER NOT NULL,
    amount_million_eur REAL NOT NULL,
    funding_source TEXT NOT NULL
);
CREATE TABLE targets (
    programme_id INTEGER NOT NULL REFERENCES programmes (id),
    metric TEXT NOT NULL,
    target_value REAL NOT NULL,
    unit TEXT NOT NULL,
    target_year INTEGER NOT NULL
);
INSERT INTO programmes VALUES
 (1, 'Renewable Power Programme', 'energy', 'Regional Energy Agency', 2025, 2040, 'renewable-energy.md'),
 (2, 'Home Retrofit Programme', 'buildings', 'Regional Energy Agency', 2025, 2032, 'building-retrofit.md'),
 (3, 'Clean Transport Plan', 'transport', 'Regional Transport Authority', 2025, 2030, 'clean-transport.md'),
 (4, 'Coal Phase-Out', 'energy', 'Regional Climate Office', 2025, 2030, 'coal-phase-out.md'),
 (5, 'Green Investment Fund', 'finance', 'Regional Treasury', 2025, 2035, 'green-investment-fund.md'),
 (6, 'Forest Restoration Programme', 'land use', 'Regional Forestry Service', 2025, 2035, 'forest-restoration.md'),
 (7, 'Methane Reduction Initiative', 'agriculture and waste', 'Regional Environment Agency', 2026, 2032, 'methane-reduction.md'),
 (8, 'Flood Defence and Adaptation Plan', 'adaptation', 'Regional Water Board', 2025, 2035, 'flood-defence.md'),
 (9, 'Community Energy Cooperatives', 'energy', 'Regional Energy Agency', 2025, 2030, 'community-energy.md'),
 (10, 'Clean Industry and Green Hydrogen', 'industry', 'Regional Economic Development Agency', 2026, 2035, 'industrial-hydrogen.md'),
 (11, 'Green Skills and Jobs', 'skills', 'Regional Education Board', 2025, 2030, 'green-skills.md'),
 (12, 'Urban Greening and Tree Canopy', 'cities', 'Regional Planning Office', 2025, 2040, 'urban-greening.md');
INSERT INTO budgets VALUES
 (1, 2025, 120, 'Green Investment Fund'), (1, 2026, 180, 'Green Investment Fund'), (1, 2027, 210, 'green bonds'),
 (2, 2025, 95, 'carbon price revenue'), (2, 2026, 140, 'carbon price revenue'), (2, 2027, 150, 'carbon price revenue'),
 (3, 2025, 160, 'regional budget'), (3, 2026, 175, 'carbon price revenue'), (3, 2027, 190, 'regional budget'),
 (4, 2025, 60, 'transition fund'), (4, 2026, 120, 'transition fund'), (4, 2027, 120, 'transition fund'),
 (5, 2025, 500, 'green bonds'), (5, 2026, 300, 'European Investment Bank loan'), (5, 2027, 250, 'carbon price revenue'),
 (6, 2025, 25, 'regional budget'), (6, 2026, 30, 'regional budget'), (6, 2027, 32, 'Green Investment Fund'),
 (7, 2026, 18, 'regional budget'), (7, 2027, 22, 'regional budget'),
 (8, 2025, 70, 'regional budget'), (8, 2026, 85, 'national co-financing'), (8, 2027, 90, 'national co-financing'),
 (9, 2025, 12, 'Green Investment Fund'), (9, 2026, 15, 'Green Investment Fund'),
 (10, 2026, 140, 'Green Investment Fund'), (10, 2027, 200, 'European Investment Bank loan'),
 (11, 2025, 20, 'regional budget'), (11, 2026, 24, 'regional budget'),
 (12, 2025, 15, 'municipal co-financing'), (12, 2026, 18, 'municipal co-financing');
INSERT INTO targets VALUES
 (1, 'renewable share of electricity', 80, 'percent', 2030),
 (1, 'offshore wind capacity', 3.5, 'gigawatts', 2032),
 (1, 'solar capacity', 2.8, 'gigawatts', 2030),
 (2, 'homes retrofitted', 120000, 'homes', 2032),
 (2, 'heat pumps installed', 80000, 'heat pumps', 2032),
 (3, 'electric cars on the road', 250000, 'cars', 2030),
 (3, 'public charging points', 20000, 'charging points', 2030),
 (4, 'coal plants closed', 2, 'plants', 2030),
 (6, 'trees planted', 15000000, 'trees', 2035),
 (7, 'methane emission reduction', 40, 'percent', 2032),
 (9, 'active cooperatives', 300, 'cooperatives', 2030),
 (10, 'electrolyser capacity', 500, 'megawatts', 2030),
 (11, 'new green apprentices', 5000, 'apprentices', 2030),
 (12, 'urban tree canopy cover', 30, 'percent', 2040);
CREATE VIEW programme_budgets AS
 SELECT p.name AS programme, p.sector AS sector, b.year AS year,
        b.amount_million_eur AS amount_million_eur, b.funding_source AS funding_source
 FROM budgets b JOIN programmes p ON p.id = b.programme_id;
CREATE VIEW programme_targets AS
 SELECT p.name AS programme, p.sector AS sector, t.metric AS metric,
        t.target_value AS target_value, t.unit AS unit, t.target_year AS target_year
 FROM targets t JOIN programmes p ON p.id = t.programme_id;
