// Labels in Chinese (the default) and English. Elements carry data-i18n (text),
// data-i18n-placeholder and data-i18n-aria (aria-label); code calls t(key). The choice is
// remembered in localStorage.

const zh = {
  app_title: '城市生命线', skip_to_panel: '跳到面板', views: '视图', map_label: '地图',
  view_network: '管网', view_risk: '风险一张图', view_excavation: '开挖核查',
  search_layer: '图层', search_id: '编号', search_placeholder: '按编号查找', search: '查找',
  login: '登录', logout: '退出', login_title: '使用 API 密钥登录', api_key: 'API 密钥', cancel: '取消',
  login_note: '密钥只保存在本浏览器标签页的会话中。', login_failed: '密钥无效或已吊销',
  anonymous: '匿名', role: '角色',
  role_viewer: '浏览者', role_contractor: '施工单位', role_analyst: '分析员', role_operator: '运维人员', role_admin: '管理员',
  navigate: '行政区划导航', choose: '— 请选择 —', nav_loading: '正在读取网格名称…', nav_loaded: '{n} 个区、街道和社区',
  level_district: '区', level_street: '街道', level_community: '社区', level_grid: '网格', level_micro_grid: '微网格',
  legend_pipelines: '管线图例', kind_toggles: '按种类显示管线', legend_dashed: '虚线：规划、废弃或已拆除',
  legend_grid: '网格层级', legend_risk: '风险等级',
  layer_pipelines: '管线', layer_risk_points: '风险点', layer_sensors: '感知设备', layer_grid_cells: '网格', layer_owners: '权属单位',
  trace_title: '关阀分析', trace_valves: '需关闭的阀门', trace_clear: '清除分析', trace_isolate: '关阀分析（隔离此管段）',
  trace_summary: '关闭 {v} 个阀门；{c} 户停供；{p} 处连带停供区；停运管线 {m} 米', trace_broken: '按失效阀门重算：{ids}',
  valve: '阀门', valve_failed: '阀门失效，重算',
  trace_upstream: '上游追踪', trace_downstream: '下游追踪', trace_upstream_summary: '上游 {n} 段管线、{m} 米，来自源点 {s}',
  trace_downstream_summary: '下游 {n} 段管线、{m} 米，供 {c} 户', trace_from_alarm: '来自告警 #{id} 的管线',
  trace_message: '发布说明', trace_message_hint: '例如：事件编号、现场情况', trace_publish: '发布到实时消息',
  trace_published: '关阀分析已发布（消息 {id}）', trace_arrived: '收到关阀方案：关闭 {v} 个阀门，{c} 户停供。{msg}', trace_show: '查看',
  alarm_isolate: '关阀分析',
  layer_nodes: '管网节点', node_type: '节点类型', source_kind: '气源/水源类型', valve_position: '阀门常态', valve_condition: '阀门状况',
  on_pipe_id: '所控管线', customers: '用户数', from_node: '起点节点', to_node: '终点节点',
  val_junction: '连接点', val_valve: '阀门', val_source: '源点', val_customer: '用户接入点', position_open: '常开', position_closed: '常闭',
  val_operable: '可操作', val_broken: '损坏', val_inaccessible: '无法操作', val_water_plant: '水厂', val_reservoir: '水库',
  val_tank: '水池', val_gate_station: '门站', val_regulator: '调压站', val_substation: '变电站', val_transformer: '变压器',
  val_heat_plant: '热源厂', val_circulation_pump: '循环泵站',
  kind_water_supply: '给水', kind_drainage: '排水', kind_gas: '燃气', kind_oil_gas: '长输油气', kind_power: '电力',
  kind_telecom: '通信', kind_broadcast_tv: '广播电视', kind_street_lighting: '路灯', kind_traffic_signal: '交通信号', kind_heat: '热力',
  risk_major: '重大', risk_large: '较大', risk_general: '一般', risk_low: '低',
  choro_cells: '已着色 {n} 个网格', choropleth: '网格统计', grid_level: '网格层级', metric: '指标', off: '关闭', metric_risk: '风险', metric_coverage: '监测覆盖率',
  alarm_list: '告警列表', alarms: '告警', alarm_state: '状态', alarm_open: '未关闭', all: '全部', live_on: '实时', live_off: '离线',
  no_alarms: '没有告警', not_available: '服务端尚未提供此接口：{what}',
  dig_area: '开挖范围', draw_tools: '绘制', draw_polygon: '画多边形', draw_line: '画线', add_vertex_centre: '在地图中心加点',
  finish: '完成', clear: '清除',
  draw_help: '点击地图加点，双击或按 Enter 完成，Esc 取消，Backspace 删除上一点。',
  drawing: '绘制中：{n} 个点', drawn_polygon: '已画多边形（{n} 个点）', drawn_line: '已画线（{n} 个点）',
  width_m: '宽度 (m)', top_depth_m: '顶深 (m)', bottom_depth_m: '底深 (m)', method: '施工方式', work_type: '作业类型',
  method_manual: '人工开挖', method_mechanical: '机械开挖', method_directional_drilling: '定向钻', method_piling: '打桩', method_blasting: '爆破',
  work_trench: '沟槽', work_foundation: '基坑', work_road_works: '道路施工', work_repair: '抢修', work_survey: '勘探',
  start_date: '开始日期', end_date: '结束日期', check: '核查', checking: '正在核查…', need_area: '请先画出开挖范围',
  summary: '结论', download_html: '下载报告 (HTML)', download_geojson: '下载 GeoJSON', conflicts: '冲突管线',
  owners_to_notify: '需通知的权属单位', ticket: '作业单', requester: '申请人',
  requester_name: '联系人', requester_phone: '联系电话', requester_company: '施工单位', emergency_ticket: '抢险作业',
  state: '状态', due_at: '答复期限', created_at: '提交时间',
  val_submitted: '已提交', val_owners_notified: '已通知权属单位', val_cleared: '可以施工', val_in_progress: '施工中',
  val_expired: '已过期', val_cancelled: '已取消', val_emergency: '抢险', val_pending: '待答复', val_marked: '已标示',
  val_clear: '无管线', val_partially_marked: '部分标示',
  val_gas_lel: '可燃气体浓度', val_pressure: '压力', val_flow: '流量', val_level: '液位', val_displacement: '位移',
  val_crack: '裂缝', val_strain: '应变', val_vibration: '振动', val_temperature: '温度', val_video: '视频', submit_ticket: '提交作业单',
  ticket_follow: '作业单跟踪', ticket_submitted: '作业单 {id} 已提交',
  open_ticket: '打开作业单（编号）', open: '打开', owner_response: '权属单位答复', response: '答复', note: '备注',
  record_response: '提交答复', response_recorded: '已记录 {owner} 的答复：{status}', responder: '答复人',
  n_conflicts: '{n} 条冲突管线（{v} 处违规，{w} 处警告）', no_conflicts: '范围内没有冲突管线',
  distance: '水平距离', clearance_3d: '三维净距', required: '要求净距', rule: '依据', widening: '精度加宽',
  sev_violation: '违规', sev_warning: '警告', sev_info: '提示',
  id: '编号', kind: '种类', sub_kind: '子类', status: '状态', level: '等级', category: '类别', name: '名称', code: '编码',
  owner: '权属单位', emergency_phone: '应急电话', emergency_contact: '应急联系人', count: '数量', cluster_zoom: '聚合点：放大查看',
  readings_24h: '最近 24 小时读数', no_readings: '没有读数', not_found: '未找到 {what}',
  ack: '确认', dispatch: '派单', resolve: '处置完成', close: '关闭', transition_done: '告警 {id} → {to}',
  new_alarm: '新告警：{what}', error: '错误',
  val_in_service: '在用', val_planned: '规划', val_abandoned: '废弃', val_removed: '已拆除', val_under_construction: '在建',
  val_online: '在线', val_offline: '离线', val_fault: '故障', val_maintenance: '维护中', val_active: '在管', val_closed: '已销号',
  val_direct: '直埋', val_conduit: '管沟', val_pipe_jacking: '顶管', val_utility_tunnel: '综合管廊',
  pressure_class: '压力级别', voltage_kv: '电压 (kV)', material: '材质', diameter_mm: '管径 (mm)',
  section_width_mm: '断面宽 (mm)', section_height_mm: '断面高 (mm)', depth_start_m: '起点埋深 (m)', depth_end_m: '终点埋深 (m)',
  invert_start_m: '起点管底高程 (m)', invert_end_m: '终点管底高程 (m)', burial: '埋设方式', owner_id: '权属单位编号',
  year_built: '建设年份', survey_date: '探测日期', plan_accuracy_cm: '平面精度 (cm)', depth_accuracy_cm: '埋深精度 (cm)',
  quality_level: '质量等级', grid_cell_id: '所属网格', responsible_unit: '责任单位', responsible_person: '责任人',
  responsible_phone: '责任人电话', emergency_plan: '应急预案', last_review: '上次核查', next_review: '下次核查',
  parent_id: '上级网格', pipeline_id: '管线编号', risk_point_id: '风险点编号', installed: '安装日期', valid_until: '有效期至',
  // 3D underground view and cross-section (issue 18)
  view3d_title: '地下三维视图', view3d_open: '三维地下视图', view3d_here: '三维查看此处地下管线（范围不超过 500 m）',
  view3d_window: '当前窗口', view3d_dig_what: '开挖范围', view3d_ticket_what: '作业单 {id}',
  view3d_loading: '正在读取管线…', view3d_summary: '{n} 条管线：{k} 条按埋深绘制，{u} 条埋深未知（按 {d} m 示意）',
  exaggeration: '竖向夸大', view3d_dig: '开挖体', view3d_envelopes: '违规净距包络', view3d_close: '关闭三维',
  view3d_legend_dig: '开挖范围与深度', view3d_legend_envelope: '违规管线的要求净距', view3d_legend_ghost: '半透明：埋深未知（示意深度）',
  depth_unknown: '埋深未知', depth_top: '管顶埋深', size: '管径/断面',
  section_draw: '画横断面线', section_help: '在地图上点两点画出横断面线（Esc 取消，空格在地图中心加点）',
  section_title: '横断面', section_download: '下载 SVG', section_summary: '{n} 条管线穿过 {m} m 长的断面线',
  section_none: '没有管线穿过这条 {m} m 长的断面线', section_dig: '开挖深度 {top}–{bottom} m',
  distance_along_m: '沿断面线距离 (m)', depth_m: '埋深 (m)',
  // Legend (issue 18): the standard's colour names, width by diameter, dashes by status
  legend_colour_note: '颜色按 CJJ 61-2017 附录 B', legend_width: '线宽：管径（分析员及以上可见管径）',
  width_small: '≤ DN200', width_medium: 'DN300–DN600', width_large: '≥ DN800',
  colour_00ffff: '天蓝', colour_4c3926: '褐', colour_ff00ff: '粉红', colour_ff8000: '橙黄', colour_ff0000: '红',
  colour_00ff00: '绿', colour_000000: '黑', colour_6600cc: '紫（不明管线）',
};

const en = {
  app_title: 'City Lifeline', skip_to_panel: 'Skip to panel', views: 'Views', map_label: 'Map',
  view_network: 'Network', view_risk: 'Risk map', view_excavation: 'Excavation check',
  search_layer: 'Layer', search_id: 'Id', search_placeholder: 'Find by id', search: 'Find',
  login: 'Log in', logout: 'Log out', login_title: 'Log in with an API key', api_key: 'API key', cancel: 'Cancel',
  login_note: 'The key is kept only in this browser tab\'s session.', login_failed: 'The key is invalid or revoked',
  anonymous: 'anonymous', role: 'Role',
  role_viewer: 'viewer', role_contractor: 'contractor', role_analyst: 'analyst', role_operator: 'operator', role_admin: 'admin',
  navigate: 'Go to district / street / community', choose: '— choose —', nav_loading: 'Reading grid names…', nav_loaded: '{n} districts, streets and communities',
  level_district: 'District', level_street: 'Street', level_community: 'Community', level_grid: 'Grid', level_micro_grid: 'Micro-grid',
  legend_pipelines: 'Pipelines', kind_toggles: 'Show pipelines by kind', legend_dashed: 'Dashed: planned, abandoned or removed',
  legend_grid: 'Grid levels', legend_risk: 'Risk levels',
  layer_pipelines: 'Pipelines', layer_risk_points: 'Risk points', layer_sensors: 'Sensors', layer_grid_cells: 'Grid cells', layer_owners: 'Owners',
  trace_title: 'Isolation trace', trace_valves: 'Valves to close', trace_clear: 'Clear trace', trace_isolate: 'Isolate this pipe',
  trace_summary: 'Close {v} valve(s); {c} customer(s) lose supply; {p} pocket(s) cut off; {m} m of pipe out of service', trace_broken: 'Recomputed with failed valves: {ids}',
  valve: 'Valve', valve_failed: 'Valve failed, recompute',
  trace_upstream: 'Trace upstream', trace_downstream: 'Trace downstream', trace_upstream_summary: 'Upstream: {n} pipe(s), {m} m, from source(s) {s}',
  trace_downstream_summary: 'Downstream: {n} pipe(s), {m} m, feeding {c} customer(s)', trace_from_alarm: 'The pipe of alarm #{id}',
  trace_message: 'Note to publish', trace_message_hint: 'e.g. incident number, what the crew found', trace_publish: 'Publish to live updates',
  trace_published: 'Isolation published (event {id})', trace_arrived: 'Isolation plan received: close {v} valve(s), {c} customer(s) lose supply. {msg}', trace_show: 'Show',
  alarm_isolate: 'Isolate',
  layer_nodes: 'Network nodes', node_type: 'Node type', source_kind: 'Source kind', valve_position: 'Normal position', valve_condition: 'Valve condition',
  on_pipe_id: 'Closes pipe', customers: 'Customers', from_node: 'From node', to_node: 'To node',
  val_junction: 'Junction', val_valve: 'Valve', val_source: 'Source', val_customer: 'Customer connection', position_open: 'Normally open', position_closed: 'Normally closed',
  val_operable: 'Operable', val_broken: 'Broken', val_inaccessible: 'Inaccessible', val_water_plant: 'Water plant', val_reservoir: 'Reservoir',
  val_tank: 'Tank', val_gate_station: 'Gate station', val_regulator: 'Regulator', val_substation: 'Substation', val_transformer: 'Transformer',
  val_heat_plant: 'Heat plant', val_circulation_pump: 'Circulation pump',
  kind_water_supply: 'Water supply', kind_drainage: 'Drainage', kind_gas: 'Gas', kind_oil_gas: 'Oil/gas (long-distance)', kind_power: 'Power',
  kind_telecom: 'Telecom', kind_broadcast_tv: 'Broadcast TV', kind_street_lighting: 'Street lighting', kind_traffic_signal: 'Traffic signals', kind_heat: 'Heat',
  risk_major: 'Major', risk_large: 'Large', risk_general: 'General', risk_low: 'Low',
  choro_cells: '{n} cells coloured', choropleth: 'Grid statistics', grid_level: 'Grid level', metric: 'Metric', off: 'Off', metric_risk: 'Risk', metric_coverage: 'Monitoring coverage',
  alarm_list: 'Alarm list', alarms: 'Alarms', alarm_state: 'State', alarm_open: 'Open', all: 'All', live_on: 'live', live_off: 'offline',
  no_alarms: 'No alarms', not_available: 'The service does not offer this yet: {what}',
  dig_area: 'Dig area', draw_tools: 'Drawing', draw_polygon: 'Draw polygon', draw_line: 'Draw line', add_vertex_centre: 'Add point at map centre',
  finish: 'Finish', clear: 'Clear',
  draw_help: 'Click the map to add points; double-click or Enter finishes, Esc cancels, Backspace removes the last point.',
  drawing: 'Drawing: {n} points', drawn_polygon: 'Polygon drawn ({n} points)', drawn_line: 'Line drawn ({n} points)',
  width_m: 'Width (m)', top_depth_m: 'Top depth (m)', bottom_depth_m: 'Bottom depth (m)', method: 'Method', work_type: 'Work type',
  method_manual: 'Manual', method_mechanical: 'Mechanical', method_directional_drilling: 'Directional drilling', method_piling: 'Piling', method_blasting: 'Blasting',
  work_trench: 'Trench', work_foundation: 'Foundation pit', work_road_works: 'Road works', work_repair: 'Repair', work_survey: 'Survey',
  start_date: 'Start date', end_date: 'End date', check: 'Check', checking: 'Checking…', need_area: 'Draw the dig area first',
  summary: 'Summary', download_html: 'Download report (HTML)', download_geojson: 'Download GeoJSON', conflicts: 'Conflicting pipelines',
  owners_to_notify: 'Owners to notify', ticket: 'Ticket', requester: 'Requester',
  requester_name: 'Contact name', requester_phone: 'Phone', requester_company: 'Company', emergency_ticket: 'Emergency work',
  state: 'State', due_at: 'Answer due', created_at: 'Submitted', submit_ticket: 'Submit ticket',
  ticket_follow: 'Ticket status', ticket_submitted: 'Ticket {id} submitted',
  open_ticket: 'Open ticket (number)', open: 'Open', owner_response: 'Owner response', response: 'Response', note: 'Note',
  record_response: 'Record response', response_recorded: 'Response of {owner} recorded: {status}', responder: 'Responder',
  n_conflicts: '{n} conflicting pipelines ({v} violations, {w} warnings)', no_conflicts: 'No conflicting pipeline in the area',
  distance: 'Horizontal distance', clearance_3d: '3D clearance', required: 'Required clearance', rule: 'Rule', widening: 'Accuracy widening',
  sev_violation: 'violation', sev_warning: 'warning', sev_info: 'info',
  id: 'Id', kind: 'Kind', sub_kind: 'Sub-kind', status: 'Status', level: 'Level', category: 'Category', name: 'Name', code: 'Code',
  owner: 'Owner', emergency_phone: 'Emergency phone', emergency_contact: 'Emergency contact', count: 'Count', cluster_zoom: 'Cluster: zoom in',
  readings_24h: 'Readings, last 24 h', no_readings: 'No readings', not_found: '{what} not found',
  ack: 'Acknowledge', dispatch: 'Dispatch', resolve: 'Resolve', close: 'Close', transition_done: 'Alarm {id} → {to}',
  new_alarm: 'New alarm: {what}', error: 'Error',
  val_gas_lel: 'combustible gas', val_displacement: 'displacement', val_strain: 'strain',
  val_in_service: 'in service', val_planned: 'planned', val_abandoned: 'abandoned', val_removed: 'removed',
  pressure_class: 'Pressure class', voltage_kv: 'Voltage (kV)', material: 'Material', diameter_mm: 'Diameter (mm)',
  section_width_mm: 'Section width (mm)', section_height_mm: 'Section height (mm)', depth_start_m: 'Depth at start (m)', depth_end_m: 'Depth at end (m)',
  invert_start_m: 'Invert at start (m)', invert_end_m: 'Invert at end (m)', burial: 'Burial', owner_id: 'Owner id',
  year_built: 'Year built', survey_date: 'Survey date', plan_accuracy_cm: 'Plan accuracy (cm)', depth_accuracy_cm: 'Depth accuracy (cm)',
  quality_level: 'Quality level', grid_cell_id: 'Grid cell', responsible_unit: 'Responsible unit', responsible_person: 'Responsible person',
  responsible_phone: 'Responsible phone', emergency_plan: 'Emergency plan', last_review: 'Last review', next_review: 'Next review',
  parent_id: 'Parent cell', pipeline_id: 'Pipeline id', risk_point_id: 'Risk point id', installed: 'Installed', valid_until: 'Valid until',
  view3d_title: 'Underground 3D view', view3d_open: '3D underground view', view3d_here: 'Pipes under this place in 3D (up to 500 m across)',
  view3d_window: 'Current window', view3d_dig_what: 'Dig area', view3d_ticket_what: 'Ticket {id}',
  view3d_loading: 'Loading pipes…', view3d_summary: '{n} pipes: {k} drawn at their depth, {u} of unknown depth (shown at {d} m)',
  exaggeration: 'Vertical exaggeration', view3d_dig: 'Dig prism', view3d_envelopes: 'Violation clearances', view3d_close: 'Close 3D',
  view3d_legend_dig: 'Dig area and depth range', view3d_legend_envelope: 'Required clearance of a violating pipe', view3d_legend_ghost: 'Translucent: depth unknown (nominal depth)',
  depth_unknown: 'depth unknown', depth_top: 'Top of pipe', size: 'Size',
  section_draw: 'Draw a cross-section', section_help: 'Click two points on the map (Esc cancels, Space adds the map centre)',
  section_title: 'Cross-section', section_download: 'Download SVG', section_summary: '{n} pipes cross the {m} m line',
  section_none: 'No pipe crosses this {m} m line', section_dig: 'Dig depth {top}–{bottom} m',
  distance_along_m: 'Distance along the line (m)', depth_m: 'Depth (m)',
  legend_colour_note: 'Colours after CJJ 61-2017 Appendix B', legend_width: 'Line width: diameter (diameters are shown to analysts and up)',
  width_small: '≤ DN200', width_medium: 'DN300–DN600', width_large: '≥ DN800',
  colour_00ffff: 'sky blue', colour_4c3926: 'brown', colour_ff00ff: 'pink', colour_ff8000: 'orange', colour_ff0000: 'red',
  colour_00ff00: 'green', colour_000000: 'black', colour_6600cc: 'purple (unknown)',
};

const dicts = { zh, en };
let lang = localStorage.getItem('lifeline.lang') === 'en' ? 'en' : 'zh';
const listeners = [];

/** The current language, `zh` or `en`. */
export const currentLang = () => lang;

/** The label for `key` in the current language, with `{name}` placeholders filled. */
export function t(key, vars = {}) {
  const s = dicts[lang][key] ?? zh[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : `{${k}}`));
}

/** A label for a vocabulary value (`kind_gas`, `risk_major`…), or the value itself. */
export function tv(prefix, value) {
  const k = `${prefix}_${value}`;
  return k in dicts[lang] ? dicts[lang][k] : String(value);
}

/** Translates every marked element under `root`. */
export function apply(root = document) {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll('[data-i18n-aria]')) el.setAttribute('aria-label', t(el.dataset.i18nAria));
}

/** Switches language, re-translates the page and tells listeners (who re-render). */
export function setLang(l) {
  lang = l === 'en' ? 'en' : 'zh';
  localStorage.setItem('lifeline.lang', lang);
  apply();
  for (const f of listeners) f(lang);
}

/** Calls `f` after every language change. */
export const onLang = (f) => listeners.push(f);
