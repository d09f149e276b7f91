"""A small bilingual corpus with known answers, for the retrieval evaluation and the tests.

Ten short documents, five English and five Chinese, on deliberately overlapping
subjects (leave and attendance, expenses in both languages, IT and data security)
so that a question has near-miss documents to be confused with. Each question is
paraphrased rather than copied from its answer passage, and names the source
that answers it.
"""

from __future__ import annotations

DOCS: dict[str, str] = {
    "en/leave-policy.md": """# Employee leave policy

## Annual leave
Full-time employees receive 25 days of paid annual leave per calendar year.
Holiday requests must be submitted in the HR portal at least two weeks before the
first day off. Up to five unused days may be carried over, and they expire on 31 March.

## Sick leave
Staff who are unwell get up to 10 days of paid sick leave a year. A medical certificate
from a doctor is required for an absence of more than three consecutive days.

## Parental leave
New parents are entitled to 16 weeks of fully paid parental leave, which can be taken
in up to three blocks during the child's first year.
""",
    "en/travel-expenses.md": """# Travel and expense policy

## Flights
Book economy class for any flight shorter than six hours. Business class may be booked
for longer flights with the approval of a director.

## Hotels and meals
Hotel rooms are reimbursed up to 180 dollars per night in most cities. A daily meal
allowance of 60 dollars covers breakfast, lunch and dinner while travelling.

## Claims
Submit receipts through the finance system within 30 days of returning from the trip.
Claims without an itemised receipt are rejected.
""",
    "en/it-security.md": """# IT security rules

## Passwords and sign-in
Passwords must be at least 14 characters long and must not be reused across services.
Multi-factor authentication is mandatory for email, VPN and the code repository.

## Devices
Company laptops use full-disk encryption and lock the screen after five minutes.
If a laptop or phone is lost or stolen, report it to the service desk within 24 hours
so that it can be wiped remotely.

## Phishing
Forward suspicious emails to security@example.com and do not click on their links.
""",
    "en/espresso-machine.html": """<html><head><title>Espresso machine care guide</title></head>
<body><h1>Espresso machine care guide</h1>
<h2>Brewing</h2>
<p>Heat the water to 93 degrees Celsius and extract a double shot of 18 grams of coffee
in 25 to 30 seconds. Adjust the grind finer if the shot runs too fast.</p>
<h2>Descaling</h2>
<p>Limescale builds up inside the boiler. Descale the machine once a month, or after
every 200 shots in areas with hard water, using citric acid solution.</p>
<h2>Steam wand</h2>
<p>Purge the steam wand and wipe off the milk residue with a damp cloth right after
frothing milk.</p>
</body></html>
""",
    "en/tomato-greenhouse.txt": """Growing tomatoes in a greenhouse

Tomato plants prefer daytime temperatures between 21 and 27 degrees Celsius and
nights no colder than 16 degrees. Open the vents on hot afternoons.

Water the plants deeply twice a week at the base rather than on the leaves, and
keep the soil evenly moist to avoid split fruit.

Indoors there is no wind or bees, so pollinate the flowers by gently shaking the
trusses or tapping them with an electric toothbrush around midday.

Dark sunken patches at the bottom of the fruit are blossom end rot, caused by a
calcium deficiency that irregular watering makes worse.
""",
    "zh/考勤制度.md": """# 考勤管理制度

## 工作时间
公司实行标准工时制，工作时间为每天上午九点至下午六点，中午十二点至一点为午休时间。

## 迟到与旷工
员工迟到超过三十分钟且未提前请假的，按旷工半天处理；当月累计迟到三次以上的，取消当月全勤奖。

## 加班
因工作需要加班的，须事先在系统中提交加班申请，经部门经理批准后，可在三个月内安排同等时长的调休。

## 远程办公
经直属主管同意，员工每周最多可以远程办公两天，远程办公期间须保持在线并按时参加会议。
""",
    "zh/报销流程.md": """# 费用报销流程

## 提交时间
员工应在每月二十五日之前提交上月的报销单，逾期提交的单据将顺延至下月处理。

## 审批权限
单笔金额在五千元以下的报销由部门经理审批；五千元以上的报销还需要财务总监签字批准。

## 差旅住宿标准
出差住宿费按城市等级报销：北京、上海、广州、深圳等一线城市每晚不超过五百元，其他城市每晚不超过三百五十元。

## 发票要求
发票抬头必须为公司全称，并注明纳税人识别号，否则财务部门不予报销。
""",
    "zh/数据安全.txt": """数据安全管理规定

公司数据分为公开、内部、机密三个等级。机密数据严禁通过微信、个人邮箱等非公司渠道传输。

存储客户个人信息的系统必须对数据进行加密，访问日志至少保存六个月。

员工离职时，须将笔记本电脑等公司设备交还信息技术部，由其清除数据后方可办理离职手续。

一旦发现数据泄露事件，须在两小时内向信息安全部门报告，不得隐瞒或自行处理。
""",
    "zh/大熊猫.html": """<html><head><title>大熊猫简介</title></head><body>
<h1>大熊猫简介</h1>
<h2>食性</h2>
<p>大熊猫的食物百分之九十九是竹子，一只成年大熊猫每天要吃十二到三十八公斤的竹子，每天花在进食上的时间长达十四个小时。</p>
<h2>分布</h2>
<p>野生大熊猫主要生活在中国四川、陕西和甘肃的山区。第四次全国调查显示，野生大熊猫数量为一千八百六十四只。</p>
<h2>繁殖</h2>
<p>大熊猫的繁殖期在每年春季，幼崽出生时体重只有一百克左右。</p>
</body></html>
""",
    "zh/绿茶冲泡.md": """# 绿茶的冲泡与保存

## 冲泡方法
冲泡龙井等绿茶时，水温以八十摄氏度左右为宜，水温过高会烫熟茶叶，使茶汤发苦。茶与水的比例约为一比五十，第一泡浸泡一分钟即可出汤。

## 产地
西湖龙井产于浙江杭州西湖周边的群山之中，以色绿、香郁、味甘、形美著称。

## 保存
绿茶容易氧化变质，开封后应密封避光，放入冰箱冷藏保存，并远离有异味的食物。
""",
}

# (question, source that answers it)
QUESTIONS_EN: list[tuple[str, str]] = [
    ("How many days of paid holiday do staff get each year?", "en/leave-policy.md"),
    ("How far ahead do I have to ask for vacation?", "en/leave-policy.md"),
    ("When do I need a note from a doctor for being ill?", "en/leave-policy.md"),
    ("How long can new mothers and fathers stay home with pay?", "en/leave-policy.md"),
    ("What is the maximum nightly rate for a hotel on a business trip?", "en/travel-expenses.md"),
    ("Can I fly business class on a four hour flight?", "en/travel-expenses.md"),
    ("How soon after a trip must I hand in my receipts?", "en/travel-expenses.md"),
    ("What is the minimum password length?", "en/it-security.md"),
    ("What should I do if my work laptop gets stolen?", "en/it-security.md"),
    ("How often should the coffee machine be cleaned of limescale?", "en/espresso-machine.html"),
    ("What water temperature is best for making espresso?", "en/espresso-machine.html"),
    ("Why are my tomatoes turning black at the bottom?", "en/tomato-greenhouse.txt"),
    ("How do I pollinate tomato flowers without bees?", "en/tomato-greenhouse.txt"),
    ("What temperature do tomato plants like during the day?", "en/tomato-greenhouse.txt"),
]

QUESTIONS_ZH: list[tuple[str, str]] = [
    ("每天几点上班，几点下班？", "zh/考勤制度.md"),
    ("迟到多长时间会被算作旷工？", "zh/考勤制度.md"),
    ("一周可以在家办公几天？", "zh/考勤制度.md"),
    ("加班以后怎么补偿？", "zh/考勤制度.md"),
    ("多少钱以上的报销需要财务总监签字？", "zh/报销流程.md"),
    ("报销单最晚什么时候交？", "zh/报销流程.md"),
    ("在上海出差住酒店每晚能报多少钱？", "zh/报销流程.md"),
    ("可以用微信发送机密文件吗？", "zh/数据安全.txt"),
    ("发现数据泄露后多久必须上报？", "zh/数据安全.txt"),
    ("员工离职的时候电脑怎么处理？", "zh/数据安全.txt"),
    ("大熊猫一天吃多少竹子？", "zh/大熊猫.html"),
    ("野外还剩多少只大熊猫？", "zh/大熊猫.html"),
    ("泡龙井茶用多少度的水？", "zh/绿茶冲泡.md"),
    ("茶叶开封后应该怎么保存？", "zh/绿茶冲泡.md"),
]
