//! The grid-governance hierarchy derived inside the real district polygons: streets split
//! the district, communities split each street, grids split communities and micro-grids
//! split grids. Streets and communities carry their real names and statistical codes;
//! grids and micro-grids get derived names ("劳动一村社区 第3网格", "… 微网格2") and codes
//! (the community code plus three digits, the grid code plus two).

use super::source::{District, StreetName};
use super::split::split;
use super::{GenerateError, CITY_CENTRE};
use geo::{Centroid, Coord, MultiPolygon};
use lifeline_model::GridLevel;
use rand::Rng;

/// Grids in every street: the domain reference counts 168 in one Jiulongpo street; each
/// street gets at least that many.
const MIN_GRIDS_PER_STREET: usize = 168;
/// Micro-grids per grid: 8,861 micro-grids over 1,575 grid organisations is about 5.6.
const MICRO_PER_GRID: std::ops::RangeInclusive<usize> = 4..=7;

/// One cell before ids are assigned; `parent` indexes the street's own cell list.
#[derive(Debug, Clone)]
pub(super) struct Cell {
    pub level: GridLevel,
    pub parent: Option<usize>,
    pub name: String,
    pub code: String,
    pub geom: MultiPolygon<f64>,
}

/// A street's cells: `cells[0]` is the street, then its communities, grids and micro-grids.
#[derive(Debug, Clone)]
pub(super) struct StreetCells {
    pub cells: Vec<Cell>,
    /// Indexes of the community cells, in the order of the names file.
    pub communities: Vec<usize>,
    /// Whether each community (same order) is urban (社区) rather than a village (村).
    pub urban: Vec<bool>,
    /// Child indexes of every cell.
    pub children: Vec<Vec<usize>>,
}

/// Splits a district into its streets, returned in the order of the names file. Urban
/// sub-districts (街道) are small and lie towards the city centre; towns are larger.
pub(super) fn split_district(
    d: &District,
    rng: &mut impl Rng,
) -> Result<Vec<MultiPolygon<f64>>, GenerateError> {
    let mut order: Vec<usize> = (0..d.streets.len()).collect();
    // Sub-districts first, so the split puts them nearest the centre.
    order.sort_by_key(|&i| !d.streets[i].is_subdistrict());
    let weights: Vec<f64> = order
        .iter()
        .map(|&i| {
            let s = &d.streets[i];
            let base = if s.is_subdistrict() {
                1.0
            } else if s.code.get(6..7) == Some("2") {
                5.0
            } else {
                4.0
            };
            base * (0.8 + 0.4 * rng.gen::<f64>()) * (1.0 + s.communities.len() as f64 / 20.0)
        })
        .collect();
    let parts = split(&d.polygon, &weights, Some(CITY_CENTRE), rng).map_err(|e| {
        GenerateError::Geometry {
            what: format!("streets of {}", d.name),
            reason: e,
        }
    })?;
    let mut out = vec![MultiPolygon::new(vec![]); d.streets.len()];
    for (part, &i) in parts.into_iter().zip(&order) {
        out[i] = part;
    }
    Ok(out)
}

/// Builds the community, grid and micro-grid cells of one street.
pub(super) fn street_tree(
    street: &StreetName,
    geom: MultiPolygon<f64>,
    rng: &mut impl Rng,
) -> Result<StreetCells, GenerateError> {
    let geo_err = |what: String| move |e: String| GenerateError::Geometry { what, reason: e };
    let mut cells = vec![Cell {
        level: GridLevel::Street,
        parent: None,
        name: street.name.clone(),
        code: street.code.clone(),
        geom,
    }];
    let mut children: Vec<Vec<usize>> = vec![vec![]];
    // A street without community names still gets one community-level cell, so the
    // hierarchy below it is complete.
    let comms: Vec<(String, String, bool)> = if street.communities.is_empty() {
        vec![(
            format!("{}社区", street.name),
            format!("{}001", street.code),
            street.is_subdistrict(),
        )]
    } else {
        street
            .communities
            .iter()
            .map(|c| (c.short_name().to_string(), c.code.clone(), c.is_urban()))
            .collect()
    };
    let mut order: Vec<usize> = (0..comms.len()).collect();
    order.sort_by_key(|&i| !comms[i].2);
    let weights: Vec<f64> = order
        .iter()
        .map(|&i| (if comms[i].2 { 1.0 } else { 3.0 }) * (0.7 + 0.7 * rng.gen::<f64>()))
        .collect();
    let parts = split(&cells[0].geom, &weights, Some(CITY_CENTRE), rng)
        .map_err(geo_err(format!("communities of {}", street.name)))?;
    let mut comm_geoms = vec![MultiPolygon::new(vec![]); comms.len()];
    for (part, &i) in parts.into_iter().zip(&order) {
        comm_geoms[i] = part;
    }

    // Grids per community: at least MIN_GRIDS_PER_STREET in the street, shared by weight
    // (urban communities are denser), at least three each.
    let n_grids = MIN_GRIDS_PER_STREET + rng.gen_range(0..=24);
    let cw: Vec<f64> = comms.iter().map(|c| if c.2 { 1.4 } else { 1.0 }).collect();
    let per_comm = apportion(n_grids, &cw, 3);

    let mut communities = Vec::with_capacity(comms.len());
    let mut urban = Vec::with_capacity(comms.len());
    for (ci, ((name, code, is_urban), geom)) in comms.into_iter().zip(comm_geoms).enumerate() {
        let comm_idx = cells.len();
        cells.push(Cell {
            level: GridLevel::Community,
            parent: Some(0),
            name: name.clone(),
            code: code.clone(),
            geom,
        });
        children.push(vec![]);
        children[0].push(comm_idx);
        communities.push(comm_idx);
        urban.push(is_urban);

        let ng = per_comm[ci];
        let gw: Vec<f64> = (0..ng).map(|_| 0.7 + 0.6 * rng.gen::<f64>()).collect();
        let grid_geoms = split(&cells[comm_idx].geom, &gw, None, rng)
            .map_err(geo_err(format!("grids of {name}")))?;
        for (gi, ggeom) in grid_geoms.into_iter().enumerate() {
            let grid_idx = cells.len();
            let grid_name = format!("{name} 第{}网格", gi + 1);
            let grid_code = format!("{code}{:03}", gi + 1);
            cells.push(Cell {
                level: GridLevel::Grid,
                parent: Some(comm_idx),
                name: grid_name.clone(),
                code: grid_code.clone(),
                geom: ggeom,
            });
            children.push(vec![]);
            children[comm_idx].push(grid_idx);

            let nm = rng.gen_range(MICRO_PER_GRID);
            let mw: Vec<f64> = (0..nm).map(|_| 0.6 + 0.8 * rng.gen::<f64>()).collect();
            let micro = split(&cells[grid_idx].geom, &mw, None, rng)
                .map_err(geo_err(format!("micro-grids of {grid_name}")))?;
            for (mi, mgeom) in micro.into_iter().enumerate() {
                let m_idx = cells.len();
                cells.push(Cell {
                    level: GridLevel::MicroGrid,
                    parent: Some(grid_idx),
                    name: format!("{grid_name} 微网格{}", mi + 1),
                    code: format!("{grid_code}{:02}", mi + 1),
                    geom: mgeom,
                });
                children.push(vec![]);
                children[grid_idx].push(m_idx);
            }
        }
    }
    Ok(StreetCells {
        cells,
        communities,
        urban,
        children,
    })
}

/// Shares `total` items over `weights` by the largest-remainder method, with at least `min`
/// each (the total grows when the minimum needs it). The result sums exactly.
pub(super) fn apportion(total: usize, weights: &[f64], min: usize) -> Vec<usize> {
    if weights.is_empty() {
        return vec![];
    }
    let sum: f64 = weights.iter().map(|w| w.max(0.0)).sum();
    if sum <= 0.0 {
        let mut out = vec![total / weights.len(); weights.len()];
        for o in out.iter_mut().take(total % weights.len()) {
            *o += 1;
        }
        return out.into_iter().map(|n| n.max(min)).collect();
    }
    let exact: Vec<f64> = weights
        .iter()
        .map(|w| w.max(0.0) / sum * total as f64)
        .collect();
    let mut out: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut rest = total.saturating_sub(out.iter().sum());
    let mut by_rem: Vec<usize> = (0..weights.len()).collect();
    // Stable order on ties keeps the result deterministic.
    by_rem.sort_by(|&a, &b| {
        let ra = exact[a] - exact[a].floor();
        let rb = exact[b] - exact[b].floor();
        rb.partial_cmp(&ra).unwrap_or(std::cmp::Ordering::Equal)
    });
    for &i in by_rem.iter().cycle() {
        if rest == 0 {
            break;
        }
        out[i] += 1;
        rest -= 1;
    }
    out.into_iter().map(|n| n.max(min)).collect()
}

/// Centroid of a cell, or the first vertex when it has none.
pub(super) fn centre_of(mp: &MultiPolygon<f64>) -> Coord<f64> {
    mp.centroid()
        .map(|p| p.0)
        .or_else(|| mp.0.first().and_then(|p| p.exterior().0.first().copied()))
        .unwrap_or(CITY_CENTRE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_is_exact() {
        let v = apportion(4508, &[1.0, 2.5, 0.3, 7.0], 0);
        assert_eq!(v.iter().sum::<usize>(), 4508);
        let v = apportion(10, &[1.0, 1.0, 1.0], 0);
        assert_eq!(v, vec![4, 3, 3]);
        let v = apportion(5, &[1.0, 100.0], 3);
        assert_eq!(v[0], 3);
    }
}
