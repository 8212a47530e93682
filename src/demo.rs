//! Demo magazines and AV titles of the embedded first start (made up, marked 「デモ資料」 as
//! publisher), so that the demo shows every material type of rule M1.

use kitsuki_catalog::model::MaterialType;

pub const EXTRA_TITLES: &[(&str, MaterialType)] = &[
    ("月刊 図書館だより", MaterialType::Magazine),
    ("季刊 城下町の暮らし", MaterialType::Magazine),
    ("週刊 こども新聞", MaterialType::Magazine),
    ("杵築の町並み（DVD）", MaterialType::Av),
    ("ふるさとの民謡（CD）", MaterialType::Av),
];
