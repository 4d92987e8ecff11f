"""Enumerations of the contest's vocabulary: the one source of every label list the service uses.

Values are the Chinese labels users see and the API speaks; names are stored in the database. The app,
the forms, the API, the demo generator (tools/) and the evaluation read them from here. The ranking core
(matching/types.py) may not import models/, so it keeps plain-string copies of the few it ranks on
(institution kinds and their sides, stages, awards, services, needs); tests/test_vocabulary_parity.py
fails when the two disagree. Vocabularies of one feature live beside its tables (models/pipeline.py:
Party, OutcomeKind, EventAction; models/events.py, models/alerts.py, models/jobs.py, models/intake.py).
"""

from __future__ import annotations

from enum import Enum
from typing import Literal, Self


class LabelEnum(str, Enum):  # noqa: UP042  (StrEnum would change str(), which templates and CSVs print)
    """An enum whose value is its Chinese label."""

    @classmethod
    def from_label(cls, label: str) -> Self:
        """Return the member with this label (or this name); raise ValueError otherwise."""
        for member in cls:
            if label in (member.value, member.name):
                return member
        raise ValueError(label)

    @classmethod
    def labels(cls) -> list[str]:
        """Return all labels in declaration order."""
        return [m.value for m in cls]


class ContestKind(LabelEnum):
    FINAL = "总决赛"
    REGIONAL = "区域赛"
    THEMATIC = "专题赛"
    TRACK = "赛道赛"
    OVERSEAS = "境外区域赛"


class ProjectGroup(LabelEnum):
    ENTERPRISE = "企业组"
    MAKER = "创客组"


class Award(LabelEnum):
    FIRST = "一等奖"
    SECOND = "二等奖"
    THIRD = "三等奖"
    EXCELLENCE = "优胜奖"
    TOP50 = "50强"
    TOP500 = "500强"
    NONE = "无"


class Stage(LabelEnum):
    IDEA = "创意阶段"
    PROTOTYPE = "研发样机"
    STARTUP = "初创期"
    GROWTH = "成长期"
    EXPANSION = "扩张期"
    MATURE = "成熟期"


class FundingRound(LabelEnum):
    SEED = "种子轮"
    ANGEL = "天使轮"
    PRE_A = "Pre-A轮"
    A = "A轮"
    B = "B轮"
    C_PLUS = "C轮及以后"
    STRATEGIC = "战略投资"
    BANK_LOAN = "银行贷款"


#: The three sides of the market an institution serves: funding, landing space, or services.
SIDES: tuple[Literal["fund", "base", "platform"], ...] = ("fund", "base", "platform")


class InstitutionKind(LabelEnum):
    GOV_FUND = "政府投资基金"
    VC = "创业投资机构"
    BANK = "银行"
    SME_BASE = "小微企业创业创新基地"
    INDUSTRY_PARK = "产业示范基地/园区"
    COOP_ZONE = "中外中小企业合作区"
    SERVICE_PLATFORM = "中小企业公共服务平台"

    @property
    def side(self) -> str:
        """Return the market side this kind serves: fund, base or platform."""
        if self in (InstitutionKind.GOV_FUND, InstitutionKind.VC, InstitutionKind.BANK):
            return "fund"
        if self is InstitutionKind.SERVICE_PLATFORM:
            return "platform"
        return "base"


SIDE_LABELS = {"fund": "投融资机构", "base": "落地基地/园区", "platform": "公共服务平台"}


class ServiceKind(LabelEnum):
    TESTING = "检验检测"
    TECH_TRANSFER = "技术转移"
    DIGITAL = "数字化改造"
    DESIGN = "工业设计"
    LEGAL = "法律"
    HR = "人力资源"
    FINANCE = "财务"
    IP = "知识产权"


#: What a project may need: financing, landing space, or a service.
PROJECT_NEEDS: tuple[str, ...] = ("融资", "落地", *ServiceKind.labels())

INDUSTRIES: tuple[str, ...] = (
    "新一代信息技术",
    "人工智能",
    "物联网",
    "区块链",
    "集成电路",
    "生物医药",
    "医疗器械",
    "新材料",
    "智能装备",
    "新能源",
    "节能环保",
    "新能源汽车",
    "航空航天",
    "现代农业",
    "智能家居",
    "数字创意",
    "消费品",
    "现代服务业",
)

PROVINCES: tuple[str, ...] = (
    "北京市",
    "天津市",
    "河北省",
    "山西省",
    "内蒙古自治区",
    "辽宁省",
    "吉林省",
    "黑龙江省",
    "上海市",
    "江苏省",
    "浙江省",
    "安徽省",
    "福建省",
    "江西省",
    "山东省",
    "河南省",
    "湖北省",
    "湖南省",
    "广东省",
    "广西壮族自治区",
    "海南省",
    "重庆市",
    "四川省",
    "贵州省",
    "云南省",
    "西藏自治区",
    "陕西省",
    "甘肃省",
    "青海省",
    "宁夏回族自治区",
    "新疆维吾尔自治区",
    "香港特别行政区",
    "澳门特别行政区",
    "台湾省",
)


class ConnectionStage(LabelEnum):
    RECOMMENDED = "推荐"
    REQUESTED = "已申请对接"
    ACCEPTED = "已接受"
    REFUSED = "已拒绝"
    MET = "已会谈"
    DUE_DILIGENCE = "尽职调查"
    SIGNED = "已签约"
    TERMINATED = "终止"


class NeedStatus(LabelEnum):
    OPEN = "征集中"
    CLOSED = "已结束"


class Role(LabelEnum):
    """What an account may do: the secretariat runs everything, the others act for what they are bound to."""

    ADMIN = "秘书处管理员"
    ORGANISER = "赛事组织方"
    INSTITUTION = "机构成员"
    PROJECT = "项目成员"


class AccountStatus(LabelEnum):
    PENDING = "待审核"
    APPROVED = "已启用"
    DISABLED = "已停用"


class RegistrationStatus(LabelEnum):
    PENDING = "待审核"
    APPROVED = "已通过"
    REJECTED = "已驳回"
