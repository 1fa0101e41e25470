/*
 * gridgen.c - deterministic synthetic data for tests, demos and benchmarks:
 * Dapeng-flavoured residents, houses, organisations, events and visits
 * (research/domain-model.md section 7), and a catalogue of realistically
 * bad inputs.
 *
 *	gridgen [--seed N] [--count N] [--type person|house|org|event|visit]
 *	gridgen --bad [--seed N] [--count N] [--type T]
 *
 * Output is NDJSON on stdout.  Normal mode writes one object of fields per
 * line, ready for "gridagent collect TYPE --json -"; every record passes
 * gs_record_validate (tests/unit/sync-validate.c checks 10,000 of each
 * type).  --bad writes {"type","fields","rule","field"} lines, each a
 * record that validation must refuse with that rule on that field; one
 * line (rule "utf8") holds raw invalid UTF-8 and is not even JSON, as a
 * reader must refuse it.
 *
 * The same seed gives the same bytes on every platform: the generator
 * has its own PRNG (xoshiro256** seeded by splitmix64), and times come
 * from a fixed window (2025-01-01 to 2026-06-30), never from the clock.
 *
 * Exit codes: 0, 64 usage, 74 output error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ids.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/util.h"
#include "core/banned.h"

#define GRIDGEN_VERSION "gridgen 0.1"

/* ------------------------------------------------------------- PRNG */

struct gen {
	uint64_t s[4];
};

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void
gen_seed(struct gen *g, uint64_t seed)
{
	int i;

	for (i = 0; i < 4; i++)
		g->s[i] = splitmix64(&seed);
}

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman and Vigna). */
static uint64_t
gen_u64(struct gen *g)
{
	uint64_t *s = g->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* Uniform in [0, n) (Lemire's multiply-shift; the bias for the small n
 * used here is far below anything a test could notice). */
static uint32_t
gen_below(struct gen *g, uint32_t n)
{
	return (uint32_t)(((gen_u64(g) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform in [0, 1). */
static double
gen_unit(struct gen *g)
{
	return (double)(gen_u64(g) >> 11) / 9007199254740992.0;
}

/* 1 with probability pct percent. */
static int
gen_pct(struct gen *g, unsigned pct)
{
	return gen_below(g, 100) < pct;
}

struct weighted {
	const char *v;
	unsigned w;
};

static const char *
gen_weighted(struct gen *g, const struct weighted *t, size_t n)
{
	unsigned total = 0, x;
	size_t i;

	for (i = 0; i < n; i++)
		total += t[i].w;
	x = gen_below(g, total);
	for (i = 0; i < n; i++) {
		if (x < t[i].w)
			return t[i].v;
		x -= t[i].w;
	}
	return t[n - 1].v;
}

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define PICK(g, a) ((a)[gen_below((g), NELEM(a))])
#define WPICK(g, a) gen_weighted((g), (a), NELEM(a))

/* ------------------------------------------------------ domain tables */

/* ID area codes: locals mostly 440307 (Longgang, parent of the Dapeng
 * streets) and the legacy 440301; migrants from the usual source
 * counties (Meizhou, Shanwei, Heyuan, Hunan, Guangxi, Jiangxi, Hubei,
 * Henan, Sichuan).  Weights after domain-model.md section 7. */
static const struct weighted local_areas[] = {
	{ "440307", 70 }, { "440301", 20 }, { "440300", 2 }, { "440308", 4 },
	{ "440306", 4 },
};
static const struct weighted migrant_areas[] = {
	{ "441424", 6 }, { "441481", 5 }, { "441402", 3 }, { "441521", 6 },
	{ "441581", 6 }, { "441622", 5 }, { "441621", 4 }, { "430524", 4 },
	{ "431224", 3 }, { "431281", 2 }, { "450921", 4 }, { "450922", 4 },
	{ "450981", 4 }, { "360730", 3 }, { "360722", 3 }, { "421126", 3 },
	{ "421181", 3 }, { "411321", 3 }, { "411328", 3 }, { "511321", 3 },
	{ "511381", 3 },
};
/* Guangdong-skewed surnames, Hakka names boosted (weights x10). */
static const struct weighted surnames[] = {
	{ "陈", 90 }, { "李", 70 }, { "黄", 60 }, { "张", 55 }, { "刘", 50 },
	{ "王", 45 }, { "林", 40 }, { "杨", 35 }, { "吴", 35 }, { "梁", 30 },
	{ "罗", 30 }, { "钟", 25 }, { "曾", 25 }, { "赖", 20 }, { "邱", 20 },
	{ "周", 20 }, { "郑", 20 }, { "何", 20 }, { "谢", 20 }, { "叶", 20 },
	{ "徐", 15 }, { "朱", 15 }, { "胡", 15 }, { "温", 15 }, { "彭", 15 },
	{ "廖", 15 }, { "蔡", 12 }, { "邓", 12 }, { "欧阳", 2 }, { "司徒", 1 },
};
static const char *const male_chars[] = { "伟", "强", "磊", "军", "勇", "杰",
	"涛", "斌", "超", "明", "辉", "健", "俊", "鹏", "浩", "宇", "航", "志",
	"文", "华", "峰", "建", "国", "平", "东", "海", "波", "龙", "晨" };
static const char *const female_chars[] = { "芳", "娜", "敏", "静", "丽",
	"娟", "燕", "霞", "玲", "婷", "雪", "琳", "慧", "颖", "欣", "怡", "梅",
	"兰", "红", "萍", "晶", "洁", "倩", "妍", "佳", "悦" };

struct street {
	const char *name;
	const char *const *comms;
	size_t ncomms;
	double lat0, lat1, lon0, lon1;
};
static const char *const kuichong[] = { "葵涌社区", "三溪社区", "溪涌社区",
	"土洋社区", "官湖社区", "坝光社区", "高源社区" };
static const char *const dapeng[] = { "鹏城社区", "王母社区", "大鹏社区",
	"水头社区", "岭澳社区", "布新社区" };
static const char *const nanao[] = { "南澳社区", "南渔社区", "东渔社区",
	"东山社区", "南隆社区", "水头沙社区", "新大社区", "东涌社区", "西涌社区" };
static const struct street streets[] = {
	{ "葵涌街道", kuichong, NELEM(kuichong), 22.60, 22.68, 114.36, 114.46 },
	{ "大鹏街道", dapeng, NELEM(dapeng), 22.57, 22.62, 114.46, 114.56 },
	{ "南澳街道", nanao, NELEM(nanao), 22.46, 22.58, 114.47, 114.60 },
};
static const char *const villages[] = { "新村", "老村", "一村", "二村" };
static const char *const estates[] = { "鹏城花园", "葵涌中心花园",
	"金岸花园", "南澳海景苑", "溪涌山庄", "大鹏半岛花园" };
static const char *const mobile_prefix[] = { "134", "135", "136", "137",
	"138", "139", "147", "150", "151", "152", "157", "158", "159", "178",
	"182", "183", "184", "187", "188", "198", "130", "131", "132", "155",
	"156", "166", "175", "176", "185", "186", "133", "153", "173", "177",
	"180", "181", "189", "191", "199" };
static const struct weighted ethnic[] = {
	{ "01", 970 }, { "08", 8 }, { "13", 5 }, { "15", 6 }, { "22", 5 },
	{ "03", 4 }, { "06", 2 },
};
static const char *const employers[] = { "大鹏新区葵涌街道办事处",
	"深圳市大鹏新区人民医院", "葵涌第二小学", "南澳海鲜街",
	"大亚湾核电运营管理有限责任公司", "坝光精细化工园区", "个体经营",
	"深圳市鹏城旅游发展有限公司", "溪涌度假村" };

/* The window all generated times fall into: fixed, so output does not
 * depend on the day it was made, and always in the past. */
#define T0_DAYS 20089 /* 2025-01-01 */
#define T_SPAN_DAYS 546 /* to 2026-06-30 */

/* ------------------------------------------------------------ helpers */

struct place {
	const struct street *st;
	const char *comm;
	char addr[256];
	double lat, lon;
};

static double
round6(double x)
{
	return (double)(int64_t)(x * 1e6 + 0.5) / 1e6;
}

static void
gen_place(struct gen *g, struct place *pl)
{
	pl->st = &streets[gen_below(g, NELEM(streets))];
	pl->comm = pl->st->comms[gen_below(g, (uint32_t)pl->st->ncomms)];
	/* Village housing dominates rentals; some live in estates. */
	if (gen_pct(g, 75))
		snprintf(pl->addr, sizeof(pl->addr),
		    "广东省深圳市大鹏新区%s%s%s%u巷%u号%u%02u房", pl->st->name,
		    pl->comm, PICK(g, villages), 1 + gen_below(g, 39),
		    1 + gen_below(g, 29), 1 + gen_below(g, 7),
		    1 + gen_below(g, 5));
	else
		snprintf(pl->addr, sizeof(pl->addr),
		    "广东省深圳市大鹏新区%s%s%s%u栋%u单元%u%02u房", pl->st->name,
		    pl->comm, PICK(g, estates), 1 + gen_below(g, 20),
		    1 + gen_below(g, 4), 1 + gen_below(g, 32),
		    1 + gen_below(g, 4));
	pl->lat = round6(pl->st->lat0 +
	    gen_unit(g) * (pl->st->lat1 - pl->st->lat0));
	pl->lon = round6(pl->st->lon0 +
	    gen_unit(g) * (pl->st->lon1 - pl->st->lon0));
}

static json_t *
geo(struct gen *g, const struct place *pl)
{
	return json_pack("{s:f, s:f, s:i, s:s}", "lat", pl->lat, "lon",
	    pl->lon, "accuracy", (int)(3 + gen_below(g, 28)), "coord_sys",
	    "WGS84");
}

static void
gen_mobile(struct gen *g, char out[12])
{
	snprintf(out, 12, "%s%08" PRIu32, PICK(g, mobile_prefix),
	    gen_below(g, 100000000));
}

static void
gen_phone(struct gen *g, char out[16])
{
	if (gen_pct(g, 92))
		gen_mobile(g, out);
	else
		snprintf(out, 16, "0755-%08" PRIu32,
		    20000000 + gen_below(g, 80000000));
}

static void
gen_name(struct gen *g, int male, char out[32])
{
	const char *const *pool = male ? male_chars : female_chars;
	size_t n = male ? NELEM(male_chars) : NELEM(female_chars);
	int two = gen_below(g, 5) != 0; /* 80 % two-character given names */

	snprintf(out, 32, "%s%s%s", WPICK(g, surnames),
	    pool[gen_below(g, (uint32_t)n)],
	    two ? pool[gen_below(g, (uint32_t)n)] : "");
}

static void
civil_from_days(int64_t z, int *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

/* An 18-digit id number; *born gets YYYY-MM-DD.  min_year..max_year. */
static void
gen_idcard(struct gen *g, const char *area, int male, int min_year,
    int max_year, char id[19], char born[11])
{
	int64_t d0 = gs_days_from_civil(min_year, 1, 1);
	int64_t d1 = gs_days_from_civil(max_year, 12, 31);
	unsigned seq = gen_below(g, 1000);
	int y, m, d;

	civil_from_days(d0 + gen_below(g, (uint32_t)(d1 - d0 + 1)), &y, &m,
	    &d);
	/* Digit 17: odd for men, even for women. */
	seq = seq - seq % 2 + (male ? 1 : 0);
	if (seq == 0)
		seq = 2;
	snprintf(id, 19, "%s%04d%02d%02d%03u", area, y, m, d, seq);
	id[17] = gs_idcard_check_char(id);
	id[18] = '\0';
	snprintf(born, 11, "%04d-%02d-%02d", y, m, d);
}

/* A uuid shaped like a UUIDv7 from the fixed time window. */
static void
gen_uuid(struct gen *g, char out[37])
{
	uint64_t ms = (uint64_t)(T0_DAYS + gen_below(g, T_SPAN_DAYS)) *
	    86400000ULL + gen_below(g, 86400000);
	uint64_t r = gen_u64(g), node = gen_u64(g);
	char buf[64];

	/* Through a roomy buffer: the compiler cannot prove the fields fit
	 * 37 bytes, though they always do. */
	snprintf(buf, sizeof(buf), "%08" PRIx64 "-%04" PRIx64 "-7%03" PRIx64
	    "-%04" PRIx64 "-%012" PRIx64, ms >> 16, ms & 0xffff,
	    r & 0xfff, 0x8000 | ((r >> 12) & 0x3fff), node &
	    (uint64_t)0xffffffffffff);
	memcpy(out, buf, 36);
	out[36] = '\0';
}

/* A UTC time in the window, as "2025-03-04T05:06:07Z"; *ms set. */
static void
gen_time(struct gen *g, char out[32], int64_t *ms)
{
	*ms = ((int64_t)T0_DAYS + gen_below(g, T_SPAN_DAYS)) * 86400000LL +
	    (int64_t)gen_below(g, 86400) * 1000;
	gs_time_format(out, 32, *ms);
	/* gs_time_format writes milliseconds; whole seconds read better. */
	memcpy(out + 19, "Z", 2);
}

static void
gen_uscc(struct gen *g, char reg, char cat, const char *region, char out[19])
{
	/* The organization code part: "MA" + 6 characters from the GB 32100
	 * alphabet (the real MA-series codes issued since 2015 look so). */
	static const char alpha[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
	char org[9];
	int i;

	org[0] = 'M';
	org[1] = 'A';
	for (i = 2; i < 8; i++)
		org[i] = alpha[gen_below(g, 31)];
	org[8] = '\0';
	snprintf(out, 19, "%c%c%s%s", reg, cat, region, org);
	out[16] = gs_orgcode_check_char(org);
	out[17] = gs_uscc_check_char(out);
	out[18] = '\0';
}

/* ------------------------------------------------------------ records */

enum rtype { T_PERSON, T_HOUSE, T_ORG, T_EVENT, T_VISIT, T_COUNT };
static const char *const type_names[T_COUNT] = { "person", "house", "org",
	"event", "visit" };

/* json_object_set_new that tolerates NULL values (allocation failure is
 * caught when the whole object is dumped: a missing key fails validation
 * in the tests, and the program checks every dump). */
static void
set(json_t *o, const char *k, json_t *v)
{
	if (v != NULL)
		json_object_set_new(o, k, v);
}

static void
sets(json_t *o, const char *k, const char *v)
{
	set(o, k, json_string(v));
}

/* pop: 0 any (60 % floating, 1 % foreign), 1 registered or floating. */
static json_t *
gen_person(struct gen *g, int local_only)
{
	json_t *o = json_object();
	struct place pl;
	char name[32], id[19], born[11], phone[16];
	int male = gen_pct(g, 50), floating, foreign, age;
	const char *area;

	foreign = !local_only && gen_below(g, 100) == 0;
	floating = !foreign && gen_pct(g, 60);
	gen_name(g, male, name);
	gen_place(g, &pl);
	sets(o, "name", name);
	sets(o, "pop_type", foreign ? "FOREIGN" : floating ? "FLOATING" :
	    "REGISTERED");
	if (foreign) {
		static const char *const nat[] = { "VNM", "PHL", "USA", "GBR",
			"KOR", "JPN", "MYS" };
		char pp[16];

		snprintf(pp, sizeof(pp), "E%08" PRIu32,
		    gen_below(g, 100000000));
		sets(o, "nationality", PICK(g, nat));
		sets(o, "passport_no", pp);
		sets(o, "sex", male ? "1" : "2");
		sets(o, "address", pl.addr);
		sets(o, "residence_region", "440307");
		return o;
	}
	area = floating ? WPICK(g, migrant_areas) : WPICK(g, local_areas);
	gen_idcard(g, area, male, 1940, 2005, id, born);
	age = 2026 - (born[0] - '0') * 1000 - (born[1] - '0') * 100 -
	    (born[2] - '0') * 10 - (born[3] - '0');
	sets(o, "id_number", id);
	sets(o, "sex", male ? "1" : "2");
	sets(o, "birth_date", born);
	sets(o, "ethnic", WPICK(g, ethnic));
	if (gen_pct(g, 70))
		sets(o, "marital", age < 24 ? "10" : gen_pct(g, 85) ? "20" :
		    gen_pct(g, 50) ? "40" : "30");
	if (gen_pct(g, 60)) {
		static const struct weighted edu[] = { { "20", 15 },
			{ "30", 15 }, { "40", 15 }, { "60", 20 }, { "70", 25 },
			{ "80", 8 }, { "14", 2 } };

		sets(o, "education", WPICK(g, edu));
	}
	if (gen_pct(g, 95)) {
		gen_phone(g, phone);
		sets(o, "phone", phone);
	}
	if (age < 65 && gen_pct(g, 60))
		sets(o, "employer", PICK(g, employers));
	sets(o, "census_region", area);
	sets(o, "residence_region", "440307");
	sets(o, "address", pl.addr);
	if (gen_pct(g, 50)) {
		char u[37];

		gen_uuid(g, u);
		sets(o, "house", u);
	}
	if (floating) {
		static const struct weighted why[] = { { "WORK", 80 },
			{ "FAMILY", 12 }, { "STUDY", 3 }, { "OTHER", 5 } };
		static const struct weighted res[] = { { "RENTAL", 70 },
			{ "EMPLOYER", 15 }, { "SITE", 5 }, { "RELATIVE", 10 } };
		int y, m, d;

		sets(o, "inflow_reason", WPICK(g, why));
		civil_from_days(T0_DAYS - 1500 + gen_below(g, 1900), &y, &m,
		    &d);
		{
			char date[11];

			snprintf(date, sizeof(date), "%04d-%02d-%02d", y, m, d);
			sets(o, "inflow_date", date);
		}
		sets(o, "residence_kind", WPICK(g, res));
	} else {
		static const struct weighted rel[] = { { "02", 35 },
			{ "10", 25 }, { "20", 15 }, { "30", 12 }, { "50", 8 },
			{ "40", 5 } };

		sets(o, "household_relation", WPICK(g, rel));
		sets(o, "residence_kind", "OWN");
	}
	/* Tags: 1-2 % special populations, care tags for the elderly. */
	if (gen_below(g, 1000) < 15 || (age >= 70 && gen_pct(g, 20))) {
		static const char *const special[] = { "RELEASED",
			"CORRECTION", "MENTAL", "DRUG", "KEY_YOUTH",
			"PETITION" };
		json_t *tags = json_array();

		if (age >= 70)
			json_array_append_new(tags, json_string(gen_pct(g, 60) ?
			    "ELDERLY_ALONE" : "LEFT_BEHIND_ELDERLY"));
		else
			json_array_append_new(tags,
			    json_string(PICK(g, special)));
		if (gen_pct(g, 20))
			json_array_append_new(tags, json_string("KEY_ATTENTION"));
		set(o, "tags", tags);
	}
	return o;
}

static json_t *
gen_house(struct gen *g)
{
	static const struct weighted use[] = { { "RESIDENCE", 70 },
		{ "SHOP", 10 }, { "DORMITORY", 8 }, { "FACTORY", 4 },
		{ "MIXED", 5 }, { "WAREHOUSE", 3 } };
	json_t *o = json_object();
	struct place pl;
	char code[32], name[32], id[19], born[11], phone[16];
	int rental = gen_pct(g, 60), male;

	gen_place(g, &pl);
	snprintf(code, sizeof(code), "4403070%02u%08" PRIu32 "%08" PRIu32,
	    1 + gen_below(g, 3), gen_below(g, 100000000),
	    gen_below(g, 100000000));
	sets(o, "house_code", code);
	sets(o, "address", pl.addr);
	sets(o, "use", WPICK(g, use));
	set(o, "area_m2", json_real((double)(2000 + gen_below(g, 30000)) /
	    100.0));
	set(o, "is_rental", json_boolean(rental));
	male = gen_pct(g, 60);
	gen_name(g, male, name);
	sets(o, "owner_name", name);
	gen_idcard(g, WPICK(g, local_areas), male, 1940, 1995, id, born);
	sets(o, "owner_id_number", id);
	gen_mobile(g, phone);
	sets(o, "owner_phone", phone);
	if (rental) {
		static const struct weighted ru[] = { { "ROOM", 50 },
			{ "WHOLE", 30 }, { "DORMITORY", 15 }, { "SHOP", 5 } };
		int occ = 1 + (int)gen_below(g, 8);

		sets(o, "rental_use", WPICK(g, ru));
		male = gen_pct(g, 55);
		gen_name(g, male, name);
		sets(o, "tenant_name", name);
		gen_idcard(g, WPICK(g, migrant_areas), male, 1960, 2005, id,
		    born);
		sets(o, "tenant_id_number", id);
		gen_mobile(g, phone);
		sets(o, "tenant_phone", phone);
		set(o, "occupants", json_integer(occ));
		set(o, "max_occupants", json_integer(occ + (int)gen_below(g,
		    4)));
		sets(o, "hazard_level", gen_pct(g, 85) ? "NONE" :
		    gen_pct(g, 80) ? "MINOR" : "SERIOUS");
		set(o, "has_fire_exit", json_boolean(gen_pct(g, 80)));
		set(o, "safety_pledge", json_boolean(gen_pct(g, 70)));
	}
	set(o, "location", geo(g, &pl));
	return o;
}

static json_t *
gen_org(struct gen *g)
{
	static const char *const trades[] = { "海鲜", "贸易", "旅游", "餐饮",
		"建材", "物流", "民宿", "电子", "水产养殖", "五金" };
	static const char *const shops[] = { "士多店", "海鲜酒家", "民宿",
		"小卖部", "五金店", "理发店", "快餐店" };
	json_t *o = json_object();
	struct place pl;
	char nm[128], uscc[19], name[32], id[19], born[11], phone[16];
	const char *kind;
	unsigned k = gen_below(g, 100);
	int male;

	gen_place(g, &pl);
	if (k < 60) {
		kind = "ENTERPRISE";
		snprintf(nm, sizeof(nm), "深圳市%s%s%s有限公司",
		    pl.comm, PICK(g, trades), gen_pct(g, 50) ? "发展" : "");
		gen_uscc(g, '9', '1', gen_pct(g, 70) ? "440300" : "440307",
		    uscc);
	} else if (k < 90) {
		kind = "INDIVIDUAL";
		snprintf(nm, sizeof(nm), "大鹏新区%s%s%s", pl.st->name,
		    pl.comm, PICK(g, shops));
		gen_uscc(g, '9', '2', "440307", uscc);
	} else if (k < 95) {
		kind = "PRIVATE_NONPROFIT";
		snprintf(nm, sizeof(nm), "深圳市大鹏新区%s社会工作服务中心",
		    pl.comm);
		gen_uscc(g, '5', '2', "440307", uscc);
	} else {
		kind = "SOCIAL_GROUP";
		snprintf(nm, sizeof(nm), "深圳市大鹏新区%s协会",
		    PICK(g, trades));
		gen_uscc(g, '5', '1', "440307", uscc);
	}
	sets(o, "name", nm);
	sets(o, "uscc", uscc);
	sets(o, "org_kind", kind);
	sets(o, "address", pl.addr);
	sets(o, "region_code", "440307");
	gen_phone(g, phone);
	sets(o, "contact_phone", phone);
	set(o, "employees", json_integer(strcmp(kind, "INDIVIDUAL") == 0 ?
	    1 + (int)gen_below(g, 6) : 3 + (int)gen_below(g, 300)));
	male = gen_pct(g, 65);
	gen_name(g, male, name);
	sets(o, "legal_rep_name", name);
	gen_idcard(g, gen_pct(g, 50) ? WPICK(g, local_areas) :
	    WPICK(g, migrant_areas), male, 1950, 2000, id, born);
	sets(o, "legal_rep_id_number", id);
	gen_mobile(g, phone);
	sets(o, "legal_rep_phone", phone);
	set(o, "is_key", json_boolean(gen_pct(g, 5)));
	set(o, "location", geo(g, &pl));
	return o;
}

struct evkind {
	const char *code;
	const char *title;
	unsigned w;
};

static const struct evkind events[] = {
	/* city management 60 % */
	{ "CM_GARBAGE", "暴露垃圾", 12 }, { "CM_MATERIAL", "乱堆物料", 8 },
	{ "CM_STREET_VENDOR", "占道经营", 10 }, { "CM_MANHOLE", "井盖破损", 6 },
	{ "CM_STREETLIGHT", "路灯不亮", 6 }, { "CM_ADS", "非法小广告", 7 },
	{ "CM_ILLEGAL_BUILD", "私搭乱建", 6 }, { "CM_WATERLOGGING", "道路积水", 5 },
	/* safety 20 % */
	{ "SA_FIRE_EXIT", "消防通道堵塞", 7 },
	{ "SA_EBIKE_CHARGING", "电动车违规充电", 8 },
	{ "SA_RENTAL_HAZARD", "出租屋安全隐患", 5 },
	/* disputes 10 % */
	{ "DI_NEIGHBOR", "邻里纠纷", 4 }, { "DI_TENANCY", "租赁纠纷", 3 },
	{ "DI_LABOR", "劳资纠纷", 3 },
	/* services 10 % */
	{ "SV_SOCIAL_SECURITY", "社保咨询", 4 }, { "SV_MEDICAL", "就医求助", 3 },
	{ "SV_DOCUMENTS", "证件办理", 3 },
};

static json_t *
gen_event(struct gen *g)
{
	json_t *o = json_object();
	const struct evkind *ev = &events[0];
	const char *village;
	struct place pl;
	unsigned total = 0, x, i;
	char title[160], desc[512], when[32];
	int64_t ms;

	for (i = 0; i < NELEM(events); i++)
		total += events[i].w;
	x = gen_below(g, total);
	for (i = 0; i < NELEM(events); i++) {
		if (x < events[i].w) {
			ev = &events[i];
			break;
		}
		x -= events[i].w;
	}
	gen_place(g, &pl);
	gen_time(g, when, &ms);
	village = PICK(g, villages);
	snprintf(title, sizeof(title), "%s%s", pl.comm, ev->title);
	snprintf(desc, sizeof(desc), "网格员巡查发现%s%s%s附近%s，已拍照取证。",
	    pl.st->name, pl.comm, village, ev->title);
	sets(o, "category", ev->code);
	sets(o, "title", title);
	sets(o, "description", desc);
	/* The place is the street and community, not a home address. */
	snprintf(title, sizeof(title), "大鹏新区%s%s%s", pl.st->name, pl.comm,
	    village);
	sets(o, "place", title);
	set(o, "location", geo(g, &pl));
	sets(o, "occurred_at", when);
	sets(o, "urgency", gen_pct(g, 85) ? "NORMAL" : gen_pct(g, 80) ?
	    "URGENT" : "EMERGENCY");
	if (strncmp(ev->code, "CM_", 3) == 0 && gen_pct(g, 35)) {
		set(o, "self_handled", json_true());
		sets(o, "handling_note", "已现场劝导并督促整改，问题已解决。");
	} else {
		set(o, "self_handled", json_false());
	}
	if (strcmp(ev->code, "CM_MANHOLE") == 0 ||
	    strcmp(ev->code, "CM_STREETLIGHT") == 0) {
		char comp[17];

		/* 6 county + 2 major class (01 public facilities) + 2 minor
		 * + 6 sequence (GB/T 30428.2). */
		snprintf(comp, sizeof(comp), "44030701%02u%06" PRIu32,
		    ev->code[3] == 'M' ? 1u : 12u, gen_below(g, 1000000));
		sets(o, "component_code", comp);
	}
	if (strncmp(ev->code, "DI_", 3) == 0)
		set(o, "parties_count", json_integer(2 + (int)gen_below(g,
		    10)));
	return o;
}

static json_t *
gen_visit(struct gen *g)
{
	static const struct weighted kinds[] = { { "HOME_VISIT", 55 },
		{ "PATROL", 25 }, { "SERVICE", 10 }, { "CHECK", 10 } };
	static const struct weighted home_purpose[] = { { "INFO_COLLECT", 30 },
		{ "INFO_VERIFY", 25 }, { "SPECIAL_FOLLOWUP", 10 }, { "CARE", 15 },
		{ "RENTAL_CHECK", 15 }, { "POLICY", 5 } };
	static const struct weighted outcomes[] = { { "NORMAL", 80 },
		{ "ABNORMAL", 8 }, { "NOT_FOUND", 9 }, { "REFUSED", 3 } };
	json_t *o = json_object();
	const char *kind = WPICK(g, kinds), *outcome = WPICK(g, outcomes);
	const char *purpose;
	struct place pl;
	char u[37], when[32], end[32], txt[256];
	int64_t ms;

	gen_place(g, &pl);
	sets(o, "kind", kind);
	if (strcmp(kind, "PATROL") == 0) {
		purpose = "PATROL";
	} else {
		gen_uuid(g, u);
		sets(o, "subject", u);
		purpose = strcmp(kind, "CHECK") == 0 ? "EVENT_VERIFY" :
		    strcmp(kind, "SERVICE") == 0 ? "CARE" :
		    WPICK(g, home_purpose);
	}
	sets(o, "purpose", purpose);
	sets(o, "outcome", outcome);
	if (strcmp(kind, "HOME_VISIT") == 0)
		set(o, "met_subject", json_boolean(strcmp(outcome,
		    "NOT_FOUND") != 0));
	if (strcmp(outcome, "ABNORMAL") == 0)
		sets(o, "abnormal_desc", PICK(g, ((const char *const[]){
		    "本人情绪激动，称近期与邻居发生争执。",
		    "发现屋内电动车充电，存在火灾隐患。",
		    "实住人数超过登记人数。",
		    "独居老人身体不适，已联系家属。" })));
	sets(o, "place", strcmp(kind, "PATROL") == 0 ? pl.comm : pl.addr);
	set(o, "location", geo(g, &pl));
	sets(o, "loc_source", gen_pct(g, 90) ? "GNSS" : "NETWORK");
	gen_time(g, when, &ms);
	sets(o, "started_at", when);
	gs_time_format(end, sizeof(end), ms + (int64_t)(5 + gen_below(g, 55)) *
	    60000);
	memcpy(end + 19, "Z", 2);
	sets(o, "ended_at", end);
	snprintf(txt, sizeof(txt), "%s：%s。", strcmp(kind, "PATROL") == 0 ?
	    "巡查网格" : "入户了解居住和就业情况", strcmp(outcome, "NORMAL") ==
	    0 ? "情况正常" : "已记录");
	sets(o, "content", txt);
	if (strcmp(outcome, "ABNORMAL") == 0 && gen_pct(g, 50)) {
		int y, m, d;
		char due[11];

		civil_from_days(ms / 86400000 + 7, &y, &m, &d);
		snprintf(due, sizeof(due), "%04d-%02d-%02d", y, m, d);
		sets(o, "follow_up", "REVISIT");
		sets(o, "follow_up_due", due);
	} else {
		sets(o, "follow_up", strcmp(outcome, "ABNORMAL") == 0 ?
		    "EVENT_REPORTED" : "NONE");
	}
	if (gen_pct(g, 20))
		sets(o, "companions", "社区民警");
	return o;
}

static json_t *
gen_record(struct gen *g, int type)
{
	switch (type) {
	case T_PERSON:
		return gen_person(g, 0);
	case T_HOUSE:
		return gen_house(g);
	case T_ORG:
		return gen_org(g);
	case T_EVENT:
		return gen_event(g);
	case T_VISIT:
	default:
		return gen_visit(g);
	}
}

/* ---------------------------------------------------- bad inputs */

/* The raw bytes that replace this marker in the "utf8" line. */
#define BAD_UTF8_MARK "@@BAD_UTF8@@"

struct bad {
	int type;
	const char *field;
	const char *rule;
	/* Spoils a valid record (of a REGISTERED or FLOATING person for
	 * persons).  NULL value: remove the field. */
	void (*spoil)(struct gen *g, json_t *o);
};

static void
set_id_tail(json_t *o, const char *key, const char *s17, int right)
{
	char id[19];

	memcpy(id, s17, 17);
	id[17] = gs_idcard_check_char(s17);
	if (!right)
		id[17] = id[17] == '0' ? '1' : '0';
	id[18] = '\0';
	sets(o, key, id);
}

static void
bad_id_check(struct gen *g, json_t *o)
{
	(void)g;
	set_id_tail(o, "id_number", json_string_value(json_object_get(o,
	    "id_number")), 0);
}

static void
bad_id_feb29(struct gen *g, json_t *o)
{
	(void)g;
	/* 2001 is no leap year: the check digit is right, the date not. */
	json_object_del(o, "birth_date");
	json_object_del(o, "sex");
	set_id_tail(o, "id_number", "44030020010229004", 1);
}

static void
bad_id_month13(struct gen *g, json_t *o)
{
	(void)g;
	json_object_del(o, "birth_date");
	json_object_del(o, "sex");
	set_id_tail(o, "id_number", "44030719851315123", 1);
}

static void
bad_id_16(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "id_number", "4403071985031512");
}

static void
bad_id_17(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "id_number", "44030719850315123");
}

static void
bad_id_15(struct gen *g, json_t *o)
{
	(void)g;
	/* A legacy 15-digit number must be upgraded, not stored. */
	sets(o, "id_number", "440307850315123");
}

static void
bad_id_letter(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "id_number", "44030719850315A230");
}

static void
bad_id_province(struct gen *g, json_t *o)
{
	(void)g;
	json_object_del(o, "birth_date");
	json_object_del(o, "sex");
	set_id_tail(o, "id_number", "99030719850315123", 1);
}

static void
bad_id_future(struct gen *g, json_t *o)
{
	(void)g;
	json_object_del(o, "birth_date");
	json_object_del(o, "sex");
	set_id_tail(o, "id_number", "44030720990101123", 1);
}

static void
bad_id_1800s(struct gen *g, json_t *o)
{
	(void)g;
	json_object_del(o, "birth_date");
	json_object_del(o, "sex");
	set_id_tail(o, "id_number", "44030718991231123", 1);
}

static void
bad_sex_parity(struct gen *g, json_t *o)
{
	const char *id = json_string_value(json_object_get(o, "id_number"));

	(void)g;
	sets(o, "sex", ((id[16] - '0') & 1) ? "2" : "1");
}

static void
bad_birth(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "id_number", "440307198503151230");
	sets(o, "sex", "1");
	sets(o, "birth_date", "1985-05-13");
}

static void
bad_sex_code(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "sex", "3");
}

static void
bad_mobile12(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "phone", "12812345678");
}

static void
bad_mobile10(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "phone", "1381234567");
}

static void
bad_no_name(struct gen *g, json_t *o)
{
	(void)g;
	json_object_del(o, "name");
}

static void
bad_null_pop(struct gen *g, json_t *o)
{
	(void)g;
	/* null means absent; and without pop_type nothing else is needed. */
	set(o, "pop_type", json_null());
	json_object_del(o, "inflow_reason");
}

static void
bad_floating_no_reason(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "pop_type", "FLOATING");
	json_object_del(o, "inflow_reason");
	json_object_del(o, "household_relation");
}

static void
bad_name_bell(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "name", "陈\a伟");
}

static void
bad_address_newline(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "address", "广东省深圳市大鹏新区\n葵涌街道");
}

static void
bad_name_c1(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "name", "陈\xc2\x85伟"); /* U+0085 NEL, a C1 control */
}

static void
bad_name_utf8(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "name", BAD_UTF8_MARK);
}

static void
bad_name_long(struct gen *g, json_t *o)
{
	char s[51 * 3 + 1];
	int i;

	(void)g;
	for (i = 0; i < 51; i++)
		memcpy(s + i * 3, "陈", 3);
	s[51 * 3] = '\0';
	sets(o, "name", s);
}

static void
bad_name_empty(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "name", "");
}

static void
bad_unknown(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "nickname", "阿伟");
}

static void
bad_tags_dup(struct gen *g, json_t *o)
{
	(void)g;
	set(o, "tags", json_pack("[s,s]", "DRUG", "DRUG"));
}

static void
bad_tags_unknown(struct gen *g, json_t *o)
{
	(void)g;
	set(o, "tags", json_pack("[s]", "VIP"));
}

static void
bad_tags_type(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "tags", "DRUG");
}

static void
bad_region(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "census_region", "44030A");
}

static void
bad_house_ref(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "house", "house-17");
}

static void
bad_uscc_letter(struct gen *g, json_t *o, char c)
{
	char u[19];

	(void)g;
	memcpy(u, "91440300MA5AY4CLX2", 19);
	u[14] = c;
	sets(o, "uscc", u);
}

static void
bad_uscc_i(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "uscc", "91440300MA5AY4CLI2");
}

static void
bad_uscc_o(struct gen *g, json_t *o)
{
	bad_uscc_letter(g, o, 'O');
}

static void
bad_uscc_s(struct gen *g, json_t *o)
{
	bad_uscc_letter(g, o, 'S');
}

static void
bad_uscc_v(struct gen *g, json_t *o)
{
	bad_uscc_letter(g, o, 'V');
}

static void
bad_uscc_z(struct gen *g, json_t *o)
{
	bad_uscc_letter(g, o, 'Z');
}

static void
bad_uscc_check(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "uscc", "91440300MA5AY4CLX3");
}

static void
bad_uscc_orgcode(struct gen *g, json_t *o)
{
	char u[19];

	(void)g;
	/* Break the embedded GB 11714 check, then fix the outer one, as a
	 * made-up code does. */
	memcpy(u, "91440300MA5AY4CL52", 19);
	u[17] = gs_uscc_check_char(u);
	sets(o, "uscc", u);
}

static void
bad_uscc_short(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "uscc", "91440300MA5AY4CLX");
}

static void
bad_org_phone(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "contact_phone", "0755-123");
}

static void
bad_employees(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "employees", "30人");
}

static void
bad_coord_sys(struct gen *g, json_t *o)
{
	(void)g;
	set(o, "location", json_pack("{s:f, s:f, s:s}", "lat", 22.5917, "lon",
	    114.5441, "coord_sys", "GPS"));
}

static void
bad_coord_missing(struct gen *g, json_t *o)
{
	(void)g;
	set(o, "location", json_pack("{s:f, s:f}", "lat", 22.5917, "lon",
	    114.5441));
}

static void
bad_lat(struct gen *g, json_t *o)
{
	(void)g;
	/* Latitude and longitude swapped: a classic. */
	set(o, "location", json_pack("{s:f, s:f, s:s}", "lat", 114.5441,
	    "lon", 22.5917, "coord_sys", "WGS84"));
}

static void
bad_accuracy(struct gen *g, json_t *o)
{
	(void)g;
	set(o, "location", json_pack("{s:f, s:f, s:i, s:s}", "lat", 22.5917,
	    "lon", 114.5441, "accuracy", -5, "coord_sys", "WGS84"));
}

static void
bad_rental_string(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "is_rental", "是");
}

static void
bad_area(struct gen *g, json_t *o)
{
	(void)g;
	set(o, "area_m2", json_real(-5.0));
}

static void
bad_occupants(struct gen *g, json_t *o)
{
	(void)g;
	set(o, "is_rental", json_true());
	sets(o, "rental_use", "ROOM");
	sets(o, "tenant_name", "李娜");
	set(o, "occupants", json_real(3.5));
}

static void
bad_rental_no_tenant(struct gen *g, json_t *o)
{
	(void)g;
	set(o, "is_rental", json_true());
	sets(o, "rental_use", "ROOM");
	json_object_del(o, "tenant_name");
}

static void
bad_owner_id(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "owner_id_number", "440307198503151231");
}

static void
bad_event_feb30(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "occurred_at", "2026-02-30T10:00:00Z");
}

static void
bad_event_format(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "occurred_at", "2026/01/05 10:00");
}

static void
bad_event_offset(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "occurred_at", "2026-01-05T10:00:00+08:00");
}

static void
bad_event_future(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "occurred_at", "2099-01-01T00:00:00Z");
}

static void
bad_event_long(struct gen *g, json_t *o)
{
	char s[2002];

	(void)g;
	memset(s, 'a', 2001);
	s[2001] = '\0';
	sets(o, "description", s);
}

static void
bad_event_category(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "category", "FLYING_SAUCER");
}

static void
bad_event_self(struct gen *g, json_t *o)
{
	(void)g;
	set(o, "self_handled", json_true());
	json_object_del(o, "handling_note");
}

static void
bad_component(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "component_code", "440307010100001");
}

static void
bad_visit_subject(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "kind", "HOME_VISIT");
	sets(o, "purpose", "INFO_VERIFY");
	json_object_del(o, "subject");
}

static void
bad_visit_abnormal(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "outcome", "ABNORMAL");
	json_object_del(o, "abnormal_desc");
}

static void
bad_visit_order(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "started_at", "2026-03-01T09:30:00Z");
	sets(o, "ended_at", "2026-03-01T09:00:00.000Z");
}

static void
bad_visit_ref(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "kind", "HOME_VISIT");
	sets(o, "purpose", "CARE");
	sets(o, "subject", "0190a6e2-7c1d-7b3e-9f00-2a1b3c4d5e6");
}

static void
bad_visit_due(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "follow_up", "REVISIT");
	sets(o, "follow_up_due", "2026-13-01");
}

static void
bad_visit_kind(struct gen *g, json_t *o)
{
	(void)g;
	sets(o, "kind", "home_visit");
	json_object_del(o, "subject");
}

static const struct bad bads[] = {
	{ T_PERSON, "id_number", "check_digit", bad_id_check },
	{ T_PERSON, "id_number", "date", bad_id_feb29 },
	{ T_PERSON, "id_number", "date", bad_id_month13 },
	{ T_PERSON, "id_number", "date", bad_id_1800s },
	{ T_PERSON, "id_number", "future_date", bad_id_future },
	{ T_PERSON, "id_number", "length", bad_id_16 },
	{ T_PERSON, "id_number", "length", bad_id_17 },
	{ T_PERSON, "id_number", "length", bad_id_15 },
	{ T_PERSON, "id_number", "charset", bad_id_letter },
	{ T_PERSON, "id_number", "province", bad_id_province },
	{ T_PERSON, "sex", "sex_mismatch", bad_sex_parity },
	{ T_PERSON, "birth_date", "birth_mismatch", bad_birth },
	{ T_PERSON, "sex", "enum", bad_sex_code },
	{ T_PERSON, "phone", "format", bad_mobile12 },
	{ T_PERSON, "phone", "format", bad_mobile10 },
	{ T_PERSON, "name", "required", bad_no_name },
	{ T_PERSON, "pop_type", "required", bad_null_pop },
	{ T_PERSON, "inflow_reason", "required", bad_floating_no_reason },
	{ T_PERSON, "name", "control_char", bad_name_bell },
	{ T_PERSON, "name", "control_char", bad_name_c1 },
	{ T_PERSON, "address", "control_char", bad_address_newline },
	{ T_PERSON, "name", "utf8", bad_name_utf8 },
	{ T_PERSON, "name", "length", bad_name_long },
	{ T_PERSON, "name", "length", bad_name_empty },
	{ T_PERSON, "nickname", "unknown_field", bad_unknown },
	{ T_PERSON, "tags", "duplicate", bad_tags_dup },
	{ T_PERSON, "tags", "enum", bad_tags_unknown },
	{ T_PERSON, "tags", "type", bad_tags_type },
	{ T_PERSON, "census_region", "charset", bad_region },
	{ T_PERSON, "house", "format", bad_house_ref },
	{ T_ORG, "uscc", "charset", bad_uscc_i },
	{ T_ORG, "uscc", "charset", bad_uscc_o },
	{ T_ORG, "uscc", "charset", bad_uscc_s },
	{ T_ORG, "uscc", "charset", bad_uscc_v },
	{ T_ORG, "uscc", "charset", bad_uscc_z },
	{ T_ORG, "uscc", "check_digit", bad_uscc_check },
	{ T_ORG, "uscc", "org_code", bad_uscc_orgcode },
	{ T_ORG, "uscc", "length", bad_uscc_short },
	{ T_ORG, "contact_phone", "format", bad_org_phone },
	{ T_ORG, "employees", "type", bad_employees },
	{ T_HOUSE, "location", "coord_sys", bad_coord_sys },
	{ T_HOUSE, "location", "coord_sys", bad_coord_missing },
	{ T_HOUSE, "location", "range", bad_lat },
	{ T_HOUSE, "location", "range", bad_accuracy },
	{ T_HOUSE, "is_rental", "type", bad_rental_string },
	{ T_HOUSE, "area_m2", "range", bad_area },
	{ T_HOUSE, "occupants", "type", bad_occupants },
	{ T_HOUSE, "tenant_name", "required", bad_rental_no_tenant },
	{ T_HOUSE, "owner_id_number", "check_digit", bad_owner_id },
	{ T_EVENT, "occurred_at", "date", bad_event_feb30 },
	{ T_EVENT, "occurred_at", "format", bad_event_format },
	{ T_EVENT, "occurred_at", "format", bad_event_offset },
	{ T_EVENT, "occurred_at", "future_date", bad_event_future },
	{ T_EVENT, "description", "length", bad_event_long },
	{ T_EVENT, "category", "enum", bad_event_category },
	{ T_EVENT, "handling_note", "required", bad_event_self },
	{ T_EVENT, "component_code", "length", bad_component },
	{ T_VISIT, "subject", "required", bad_visit_subject },
	{ T_VISIT, "abnormal_desc", "required", bad_visit_abnormal },
	{ T_VISIT, "ended_at", "order", bad_visit_order },
	{ T_VISIT, "subject", "format", bad_visit_ref },
	{ T_VISIT, "follow_up_due", "date", bad_visit_due },
	{ T_VISIT, "kind", "enum", bad_visit_kind },
};

/* The i-th bad line (i modulo the catalogue) as an object
 * {"type","fields","rule","field"}; new reference or NULL. */
static json_t *
gen_bad(struct gen *g, size_t i)
{
	const struct bad *b = &bads[i % NELEM(bads)];
	json_t *rec, *line;

	rec = b->type == T_PERSON ? gen_person(g, 1) : gen_record(g, b->type);
	if (rec == NULL)
		return NULL;
	b->spoil(g, rec);
	line = json_pack("{s:s, s:o, s:s, s:s}", "type", type_names[b->type],
	    "fields", rec, "rule", b->rule, "field", b->field);
	return line;
}

/* ---------------------------------------------------------------- main */

#ifndef GRIDGEN_NO_MAIN

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: gridgen [--seed N] [--count N] [--type TYPE] [--bad]\n"
	    "\n"
	    "Writes synthetic Dapeng-style records as NDJSON, one object of\n"
	    "fields per line (for \"gridagent collect TYPE --json -\").\n"
	    "\n"
	    "  --seed N    PRNG seed (default 1); same seed, same bytes\n"
	    "  --count N   number of lines (default 10; with --bad, the\n"
	    "              whole catalogue once)\n"
	    "  --type T    person, house, org, event or visit (default\n"
	    "              person; with --bad, only that type's cases)\n"
	    "  --bad       write the catalogue of bad inputs as lines\n"
	    "              {\"type\",\"fields\",\"rule\",\"field\"}\n"
	    "  --help, --version\n");
}

/* Writes one line; the utf8 case gets its raw bytes here. */
static int
emit(json_t *o, struct gs_buf *line)
{
	char *s, *mark;
	size_t n;

	s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
	if (s == NULL)
		return GS_ENOMEM;
	n = strlen(s);
	gs_buf_reset(line);
	if ((mark = strstr(s, BAD_UTF8_MARK)) != NULL) {
		/* 0xC3 0x28: a lead byte without its continuation. */
		if (gs_buf_append(line, s, (size_t)(mark - s)) != GS_OK ||
		    gs_buf_append(line, "\xe9\x99\xc3\x28\xff", 5) != GS_OK ||
		    gs_buf_puts(line, mark + strlen(BAD_UTF8_MARK)) != GS_OK) {
			free(s);
			return GS_ENOMEM;
		}
	} else if (gs_buf_append(line, s, n) != GS_OK) {
		free(s);
		return GS_ENOMEM;
	}
	free(s);
	if (gs_buf_putc(line, '\n') != GS_OK)
		return GS_ENOMEM;
	if (fwrite(line->data, 1, line->len, stdout) != line->len)
		return GS_EIO;
	return GS_OK;
}

static int
parse_count(const char *opt, const char *v, uint64_t max, uint64_t *out)
{
	if (v == NULL || gs_parse_u64(v, max, out) != GS_OK) {
		fprintf(stderr, "gridgen: %s needs a number from 0 to %" PRIu64
		    ", not \"%s\"\n", opt, max, v != NULL ? v : "");
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	uint64_t seed = 1, count = 10;
	int type = -1, bad = 0, have_count = 0, i, t, r = GS_OK;
	struct gs_buf line;
	struct gen g;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--version") == 0) {
			printf("%s\n", GRIDGEN_VERSION);
			return 0;
		} else if (strcmp(a, "--bad") == 0) {
			bad = 1;
		} else if (strcmp(a, "--seed") == 0) {
			if (parse_count(a, v, UINT64_MAX, &seed) != 0)
				goto usage;
			i++;
		} else if (strcmp(a, "--count") == 0) {
			if (parse_count(a, v, 1000000000, &count) != 0)
				goto usage;
			have_count = 1;
			i++;
		} else if (strcmp(a, "--type") == 0) {
			if (v == NULL)
				goto usage;
			for (t = 0; t < T_COUNT; t++)
				if (strcmp(v, type_names[t]) == 0)
					type = t;
			if (type < 0) {
				fprintf(stderr, "gridgen: unknown type \"%s\" "
				    "(person, house, org, event, visit)\n", v);
				goto usage;
			}
			i++;
		} else {
			fprintf(stderr, "gridgen: unknown argument \"%s\"\n", a);
			goto usage;
		}
	}
	gen_seed(&g, seed);
	gs_buf_init(&line, 1 << 20);
	if (bad) {
		size_t k, emitted = 0, n = NELEM(bads);

		/* Without --count: each case once.  With it: cycle. */
		for (k = 0; r == GS_OK && (have_count ? emitted < count :
		    k < n); k++) {
			json_t *o;

			if (type >= 0 && bads[k % n].type != type) {
				if (have_count && k > n * (count + 1))
					break; /* no case of this type */
				continue;
			}
			if ((o = gen_bad(&g, k)) == NULL) {
				r = GS_ENOMEM;
				break;
			}
			r = emit(o, &line);
			json_decref(o);
			emitted++;
		}
	} else {
		uint64_t k;

		if (type < 0)
			type = T_PERSON;
		for (k = 0; r == GS_OK && k < count; k++) {
			json_t *o = gen_record(&g, type);

			if (o == NULL) {
				r = GS_ENOMEM;
				break;
			}
			r = emit(o, &line);
			json_decref(o);
		}
	}
	gs_buf_release(&line);
	if (r == GS_OK && fflush(stdout) != 0)
		r = GS_EIO;
	if (r != GS_OK) {
		fprintf(stderr, "gridgen: %s\n", r == GS_EIO ? strerror(errno) :
		    gs_strerror(r));
		return GS_EX_IOERR;
	}
	return 0;
usage:
	usage(stderr);
	return GS_EX_USAGE;
}

#endif /* GRIDGEN_NO_MAIN */
