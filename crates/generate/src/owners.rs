//! The pipeline owners and operators of the sample city (water, drainage, gas, long-distance
//! oil and gas, the State Grid branches, the telecom operators, cable TV, street lighting,
//! traffic signals, district energy), which owner runs which kind in which district, and
//! the people and phone numbers that fill responsibility fields.
//!
//! Company names follow the real organisations of central Chongqing; the emergency phone
//! numbers are made up (valid Chongqing landline shape, not real numbers).

use lifeline_model::{Owner, PipeKind};
use rand::Rng;

/// Owner ids, fixed so every preset and seed refers to the same companies.
pub(super) mod id {
    pub const WATER_CITY: i64 = 1;
    pub const WATER_NORTH: i64 = 2;
    pub const DRAIN_TRUNK: i64 = 3;
    pub const DRAIN_LOCAL: i64 = 4;
    pub const GAS_CITY: i64 = 5;
    pub const GAS_HIGH: i64 = 6;
    pub const OILGAS_PETROCHINA: i64 = 7;
    pub const OILGAS_PIPECHINA: i64 = 8;
    pub const OILGAS_SINOPEC: i64 = 9;
    pub const POWER_URBAN: i64 = 10;
    pub const POWER_SOUTH: i64 = 11;
    pub const POWER_NORTH: i64 = 12;
    pub const POWER_BEIBEI: i64 = 13;
    pub const TELECOM: i64 = 14;
    pub const MOBILE: i64 = 15;
    pub const UNICOM: i64 = 16;
    pub const TOWER: i64 = 17;
    pub const CABLE_TV: i64 = 18;
    pub const LIGHTING: i64 = 19;
    pub const SIGNAL: i64 = 20;
    pub const HEAT: i64 = 21;
}

/// (id, name, duty desk, duty officer, phone, e-mail, kinds run).
type OwnerRow = (
    i64,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static [PipeKind],
);

const OWNERS: &[OwnerRow] = &[
    (
        id::WATER_CITY,
        "重庆市自来水有限公司",
        "供水抢修调度中心",
        "陈建国",
        "023-63861120",
        Some("dispatch@cqwater.example.com"),
        &[PipeKind::WaterSupply],
    ),
    (
        id::WATER_NORTH,
        "重庆水务集团江北供水有限公司",
        "24小时供水服务热线",
        "刘晓东",
        "023-67851306",
        None,
        &[PipeKind::WaterSupply],
    ),
    (
        id::DRAIN_TRUNK,
        "重庆市排水有限公司",
        "排水管网应急抢险队",
        "周国强",
        "023-68701542",
        Some("yingji@cqpaishui.example.com"),
        &[PipeKind::Drainage],
    ),
    (
        id::DRAIN_LOCAL,
        "重庆市市政设施运行保障中心",
        "市政设施值班室",
        "王立平",
        "023-63625318",
        None,
        &[PipeKind::Drainage],
    ),
    (
        id::GAS_CITY,
        "重庆燃气集团股份有限公司",
        "燃气抢险调度中心",
        "李振华",
        "023-63861875",
        Some("qiangxian@cqgas.example.com"),
        &[PipeKind::Gas],
    ),
    (
        id::GAS_HIGH,
        "重庆燃气集团股份有限公司高压管网分公司",
        "高压管网运行调度室",
        "张伟",
        "023-68157736",
        None,
        &[PipeKind::Gas],
    ),
    (
        id::OILGAS_PETROCHINA,
        "中国石油西南油气田分公司重庆气矿",
        "输气管道生产调度中心",
        "杨志刚",
        "023-67303619",
        None,
        &[PipeKind::OilGas],
    ),
    (
        id::OILGAS_PIPECHINA,
        "国家管网集团西南管道有限责任公司",
        "管道保护应急值班室",
        "赵海涛",
        "023-88615402",
        Some("gdbh@pipechina-sw.example.com"),
        &[PipeKind::OilGas],
    ),
    (
        id::OILGAS_SINOPEC,
        "中国石化销售股份有限公司重庆石油分公司",
        "成品油管道调度室",
        "黄明",
        "023-63757201",
        None,
        &[PipeKind::OilGas],
    ),
    (
        id::POWER_URBAN,
        "国网重庆市电力公司市区供电分公司",
        "配网抢修指挥中心",
        "吴俊",
        "023-63692210",
        Some("qxzh@cq.sgcc.example.com"),
        &[PipeKind::Power],
    ),
    (
        id::POWER_SOUTH,
        "国网重庆市电力公司市南供电分公司",
        "配网抢修指挥中心",
        "徐磊",
        "023-62956681",
        None,
        &[PipeKind::Power],
    ),
    (
        id::POWER_NORTH,
        "国网重庆市电力公司市北供电分公司",
        "配网抢修指挥中心",
        "孙海波",
        "023-67086433",
        None,
        &[PipeKind::Power],
    ),
    (
        id::POWER_BEIBEI,
        "国网重庆市电力公司北碚供电分公司",
        "配网抢修指挥中心",
        "马骏",
        "023-68225907",
        None,
        &[PipeKind::Power],
    ),
    (
        id::TELECOM,
        "中国电信股份有限公司重庆分公司",
        "线路维护中心",
        "朱红",
        "023-63500217",
        None,
        &[PipeKind::Telecom],
    ),
    (
        id::MOBILE,
        "中国移动通信集团重庆有限公司",
        "传输线路应急中心",
        "胡斌",
        "023-63030418",
        None,
        &[PipeKind::Telecom],
    ),
    (
        id::UNICOM,
        "中国联合网络通信有限公司重庆市分公司",
        "线路维护调度室",
        "郭鹏",
        "023-63110526",
        None,
        &[PipeKind::Telecom],
    ),
    (
        id::TOWER,
        "中国铁塔股份有限公司重庆市分公司",
        "运维监控中心",
        "何静",
        "023-86912733",
        None,
        &[PipeKind::Telecom],
    ),
    (
        id::CABLE_TV,
        "重庆有线电视网络有限公司",
        "网络运维中心",
        "林涛",
        "023-67689104",
        None,
        &[PipeKind::BroadcastTv],
    ),
    (
        id::LIGHTING,
        "重庆市城市照明管理中心",
        "路灯维修值班室",
        "罗军",
        "023-63857249",
        None,
        &[PipeKind::StreetLighting],
    ),
    (
        id::SIGNAL,
        "重庆市公安局交通巡逻警察总队交通信号管理所",
        "信号设施维护值班室",
        "高翔",
        "023-63961830",
        None,
        &[PipeKind::TrafficSignal],
    ),
    (
        id::HEAT,
        "重庆能源集团区域供能有限公司",
        "江水源热泵能源站值班室",
        "郑宇",
        "023-67521964",
        None,
        &[PipeKind::Heat],
    ),
];

/// Every owner of the sample city.
pub(super) fn owners() -> Vec<Owner> {
    OWNERS
        .iter()
        .map(|(id, name, desk, person, phone, email, _)| Owner {
            id: *id,
            name: (*name).to_string(),
            emergency_contact: format!("{desk}（值班负责人 {person}）"),
            emergency_phone: (*phone).to_string(),
            email: email.map(str::to_string),
        })
        .collect()
}

/// The kinds an owner runs.
#[cfg(test)]
pub(super) fn kinds_of(owner_id: i64) -> &'static [PipeKind] {
    OWNERS
        .iter()
        .find(|o| o.0 == owner_id)
        .map(|o| o.6)
        .unwrap_or(&[])
}

/// The owner's name.
pub(super) fn name_of(owner_id: i64) -> &'static str {
    OWNERS
        .iter()
        .find(|o| o.0 == owner_id)
        .map(|o| o.1)
        .unwrap_or("重庆市城市管理局")
}

/// The State Grid branch that runs distribution cables in a district.
pub(super) fn power_owner(adcode: &str) -> i64 {
    match adcode {
        "500108" | "500113" => id::POWER_SOUTH,
        "500112" => id::POWER_NORTH,
        "500109" => id::POWER_BEIBEI,
        _ => id::POWER_URBAN,
    }
}

/// The water company of a district.
pub(super) fn water_owner(adcode: &str) -> i64 {
    match adcode {
        "500105" | "500112" | "500109" => id::WATER_NORTH,
        _ => id::WATER_CITY,
    }
}

const SURNAMES: &[char] = &[
    '王', '李', '张', '刘', '陈', '杨', '黄', '赵', '吴', '周', '徐', '孙', '马', '朱', '胡', '郭',
    '何', '林', '罗', '高', '郑', '梁', '谢', '宋', '唐', '许', '韩', '冯', '邓', '曹', '彭', '曾',
    '肖', '田', '董', '袁', '潘', '蒋', '蔡', '余', '杜', '叶', '程', '魏', '苏', '吕', '丁', '任',
    '卢', '姚', '沈', '钟', '姜', '崔', '谭', '陆', '范', '汪', '廖', '石', '金', '贾', '夏', '付',
    '方', '邹', '熊', '白', '孟', '秦', '邱', '侯', '江', '尹', '薛', '闫', '段', '雷', '龙', '黎',
    '史', '陶', '贺', '毛', '向',
];

const GIVEN: &[char] = &[
    '伟', '芳', '娜', '敏', '静', '丽', '强', '磊', '军', '洋', '勇', '艳', '杰', '涛', '明', '超',
    '秀', '霞', '平', '刚', '桂', '英', '华', '建', '国', '红', '文', '辉', '力', '斌', '宇', '鹏',
    '波', '俊', '琳', '婷', '雪', '飞', '鑫', '浩', '欣', '晨', '思', '雨', '佳', '春', '志', '海',
    '林', '川', '渝', '蓉', '兵', '荣', '德', '松', '梅', '玲', '凯', '亮', '峰', '昊', '然', '瑶',
    '颖', '倩', '丹', '阳',
];

/// A plausible Chinese personal name (surname and one or two given characters).
pub(super) fn person_name(rng: &mut impl Rng) -> String {
    let mut s = String::new();
    s.push(SURNAMES[rng.gen_range(0..SURNAMES.len())]);
    s.push(GIVEN[rng.gen_range(0..GIVEN.len())]);
    if rng.gen_bool(0.65) {
        s.push(GIVEN[rng.gen_range(0..GIVEN.len())]);
    }
    s
}

/// A mobile number of the Chinese numbering plan (made up).
pub(super) fn mobile(rng: &mut impl Rng) -> String {
    const PREFIXES: &[&str] = &[
        "133", "135", "136", "138", "139", "150", "151", "152", "158", "177", "180", "181", "185",
        "187", "189", "199",
    ];
    format!(
        "{}{:08}",
        PREFIXES[rng.gen_range(0..PREFIXES.len())],
        rng.gen_range(0..100_000_000u32)
    )
}

/// A Chongqing landline number (area code 023, eight digits; made up).
pub(super) fn landline(rng: &mut impl Rng) -> String {
    let first = [6u32, 6, 6, 8][rng.gen_range(0..4)];
    format!("023-{first}{:07}", rng.gen_range(0..10_000_000u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_valid_and_cover_every_kind() {
        let list = owners();
        assert!(list.len() >= 20);
        for o in &list {
            o.validate().unwrap();
        }
        for k in PipeKind::ALL {
            assert!(
                list.iter().any(|o| kinds_of(o.id).contains(k)),
                "nobody runs {k}"
            );
        }
        let mut ids: Vec<i64> = list.iter().map(|o| o.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), list.len());
    }
}
