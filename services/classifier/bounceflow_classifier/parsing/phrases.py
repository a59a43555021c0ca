"""Reason phrase tables: what MTAs and providers actually write, per reason.

Data, not logic: `reasons.py` compiles these once. Phrases are regex
fragments matched against lower-cased diagnostic text from which e-mail
addresses have been blanked (an address is who, never why). The strong
table is checked in order, most specific reason first; the weak table holds
generic words that only decide when the status code does not.
"""

from __future__ import annotations

# Reason → phrases (regex fragments, matched against lower-cased text).
TEXT_TABLE: list[tuple[str, tuple[str, ...]]] = [
    ("mailboxfull", (
        r"mailbox (?:is )?full", r"mail ?box full", r"mailbox (?:is )?over ?quota", r"over ?quota",
        r"quota (?:exceeded|violation|full|limit)", r"exceeded (?:storage|quota|the quota)",
        r"user'?s? (?:mail)?(?:box|folder) is full", r"mailfolder is full", r"insufficient (?:disk|storage) space",
        r"not enough (?:disk )?space", r"disk ?quota", r"mailbox (?:has exceeded|exceeds)", r"mailbox size limit",
        r"exceeds? (?:his|her|their|the user'?s?|the recipient'?s?) (?:mailbox|storage|quota)",
        r"account is full", r"inbox is full", r"is over (?:the )?(?:storage|quota)", r"storage (?:limit|allocation) exceeded",
        r"boîte (?:aux lettres )?pleine", r"mailbox is overloaded", r"too much mail data", r"no space left",
        r"would exceed (?:the )?(?:maximum )?(?:mailbox )?quota", r"user over limit", r"exceeding its mailbox quota",
    )),
    ("exceedlimit", (r"recipsizelimit", r"message too large for this recipient", r"exceeds? (?:the )?size limit",)),
    ("mesgtoobig", (
        r"line limit exceeded", r"line too long",
        r"message (?:file )?too (?:big|large)", r"message size exceeds", r"message exceeds .{0,40}size",
        r"size (?:limit )?exceeded", r"exceeds? (?:the )?(?:fixed )?(?:maximum|max) (?:allowed |message )?size",
        r"message is too large", r"mail too large", r"message length exceeds", r"exceeded maximum (?:inbound )?message size",
        r"taille maximale",
    )),
    ("suspend", (
        r"account (?:has been |is )?(?:disabled|suspended|deactivated|inactive|locked|frozen)",
        r"(?:mailbox|address|user|recipient|e-?mail account|account|inbox) (?:\S+ )?(?:is |has been )?(?:disabled|suspended|deactivated|inactive|not active|frozen|temporar(?:y|ily) (?:disabled|locked)|currently suspended)",
        r"email account that you tried to reach is (?:disabled|inactive)", r"is no longer in use",
        r"boite du destinataire archivee", r"user suspended", r"recipient suspended", r"account expired",
        r"has been disabled", r"this account has been (?:blocked|closed)",
    )),
    ("hasmoved", (r"has been replaced by", r"no longer available at this address and has moved", r"user has moved",)),
    ("norelaying", (
        r"relay(?:ing)? (?:access )?denied", r"relay(?:ing)? not (?:permitted|allowed)", r"not permitted to relay",
        r"unable to relay", r"no relaying", r"relaying (?:mail )?(?:to .{1,60} )?(?:is )?not allowed", r"we do not relay",
        r"mail for .{1,80} loops back to myself", r"(?:is|isn'?t) (?:not )?in my list of allowed rcpthosts",
        r"relay not authorized", r"not authorized to relay", r"email address is not verified",
    )),
    ("authfailure", (
        r"\bspf\b.{0,80}\b(?:fail|failure|failed|check)", r"\bdkim\b.{0,60}(?:fail|invalid|missing|required)",
        r"\bdmarc\b.{0,80}(?:fail|reject|policy|verification|check)", r"sender policy framework", r"authentication (?:check(?:s)? )?fail",
        r"unauthenticated (?:e-?)?mail from", r"does not have authentication information", r"fails? to pass (?:authentication|spf|dkim|dmarc)",
        r"5\.7\.(?:2[0-4]|26|509|510)\b",
    )),
    ("requireptr", (
        r"mismatches client ip", r"does not match (?:your|the) (?:client|connecting) ip",
        r"(?:no|cannot find your|can'?t find your|missing|without|does not have a?) (?:valid )?(?:ptr|reverse dns|rdns|reverse lookup|reverse hostname)",
        r"reverse (?:dns|lookup|resolution) (?:failed|failure|error|mismatch|not)", r"ptr record", r"\brdns\b",
        r"(?:ip|client) (?:address )?(?:name )?lookup failed", r"cannot resolve your (?:address|hostname|ip)",
        r"no reverse", r"reverse ?dns", r"unresolvable (?:ip|address|host)", r"not resolve your (?:ip|address|hostname)",
        r"sender ip must resolve", r"5\.7\.25\b", r"cannot find your hostname", r"invalid ptr", r"fcrdns", r"unverifyable sending ip",
    )),
    ("notcompliantrfc", (
        r"not rfc ?5322 compliant", r"not (?:rfc|rfc5322|rfc 5322)[- ]compliant", r"rfc ?(?:5322|2822|822) (?:violation|compliance)",
        r"multiple (?:addresses in from|from|subject|date|message-id|to) (?:header|headers|fields)", r"duplicate header",
        r"messages with multiple addresses in from", r"missing (?:from|date|message-id) header",
    )),
    ("badreputation", (r"bad reputation", r"poor reputation", r"sender reputation", r"low reputation",
                       r"ip reputation", r"reputation (?:is )?too low", r"4\.7\.650\b",)),
    ("securityerror", (r"unauthenticated senders?", r"authentication required", r"\bauth(?:entication)? (?:is )?required",
                       r"tls required", r"must (?:use|issue) (?:a )?starttls", r"encryption required", r"authrequired",
                       r"not authenticated",)),
    ("rejected", (
        r"sender (?:address )?(?:was )?(?:rejected|denied|blocked|refused|not allowed)", r"(?:mail|envelope) from .{0,60}(?:rejected|refused|denied)",
        r"domain of sender address", r"sender domain", r"sender verify failed", r"sender (?:address )?verification",
        r"you are sending to/from", r"purported responsible address", r"bad sender", r"invalid sender", r"senders? (?:is )?not permitted",
    )),
    ("toomanyconn", (r"too many (?:connections|concurrent|simultaneous|sessions|recipients)", r"connection (?:rate|frequency) limit",
                     r"frequency limited", r"connection limit", r"max(?:imum)? (?:number of )?connections",)),
    ("speeding", (r"rate limit", r"rate(?:-| )limited", r"too many (?:messages|emails|mails) (?:sent|from|in)", r"sending too fast",
                  r"throttl", r"receiving mail at a rate",)),
    ("spamdetected", (
        r"\bspam\b", r"junk mail", r"unsolicited", r"bulk mail", r"message content rejected", r"content (?:is |was )?(?:considered|classified|identified) as",
        r"rejected (?:as|by) (?:spam|content filter)", r"message (?:is|was|has been) (?:considered|classified|identified|flagged) as",
        r"scored too high", r"score (?:is )?too high", r"appears to be (?:spam|unsolicited)", r"blacklisted url",
        r"suspicious (?:content|url|link)", r"looks like (?:spam|junk)", r"high probability of being", r"phish",
    )),
    ("virusdetected", (r"\bvirus", r"malware", r"infected", r"trojan", r"malicious",)),
    ("notaccept", (r"does not accept (?:e-?)?mail", r"accepts no mail", r"null mx", r"no mx record", r"not accepting (?:any )?mail",
                   r"host does not receive any mail", r"no smtp service", r"couldn'?t find a mail exchanger",)),
    ("hostunknown", (
        r"host (?:or domain name )?(?:is )?(?:unknown|not found(?!, try again))", r"(?:^|[\s<:(\[])(?:[a-z0-9-]+\.)+[a-z]{2,}>?:? does not exist", r"unknown host", r"domain (?:name )?not found", r"no such domain",
        r"domain (?:does not|doesn'?t) exist", r"unrouteable (?:mail )?(?:domain|address)", r"unroutable address", r"name or service not known",
        r"domain (?:is )?(?:invalid|unknown)", r"unknown domain", r"recipient domain (?:is )?(?:invalid|unknown)",
        r"nxdomain", r"domain .{0,60}could(?:n'?t| not) be found", r"cannot find (?:the )?(?:mail )?server for",
        r"illegal host/domain name", r"invalid domain", r"the account or domain may not exist", r"no (?:valid )?a records?",
    )),
    ("userunknown", (
        r"please check if (?:the )?address is correct",
        r"user ?unknown", r"unknown (?:local )?(?:user|recipient|mailbox|address|email address|account)", r"no such (?:user|mailbox|recipient|address|account|person|local user|email)",
        r"(?:user|mailbox|recipient|address|account|addressee|e-?mail account|e-?mail address|destination address) (?:\S+ )?(?:does not|doesn'?t|did not|not) exists?",
        r"(?:user|mailbox|recipient|address|addressee) (?:\S+ )?(?:was |is )?not (?:found|known|listed|valid)",
        r"(?:invalid|bad|unknown|nonexistent|non-existent|inexistent) (?:destination |recipient |e-?mail )?(?:user|mailbox|recipient|address|account)",
        r"mailbox (?:unavailable|not (?:found|present|available)|invalid)", r"recipient (?:is )?(?:unknown|invalid|not (?:ok|exist))",
        r"address (?:is )?(?:unknown|invalid)", r"not a valid (?:user|recipient|mailbox|address)",
        r"no mailbox (?:here )?(?:by that name|found|available)", r"no (?:account|user) (?:by that name|here)", r"not listed in",
        r"recipnotfound", r"recipientnotfound", r"recipient not found", r"resolver\.adr\.", r"doesn'?t have an? .{0,40}account",
        r"badrcptto", r"validrcptto", r"there is no one at this address", r"email account that you tried to reach does not exist",
        r"utilisateur inconnu", r"destinataire (?:inconnu|invalide)", r"adresse (?:destinataire )?invalide", r"unbekannt",
        r"usuario (?:desconocido|no existe)", r"no existe", r"inesistente", r"non esiste", r"couldn'?t be found",
        r"address not found", r"addressee unknown", r"is not a known user", r"user not found", r"user doesn'?t exist",
        r"unknown or illegal alias", r"invalid address", r"address (?:does not|doesn'?t) exist", r"no valid recipients?",
        r"mailbox name not allowed", r"not our customer", r"recipient address rejected: access denied", r"could not be found", r"inactive email address",
    )),
    ("filtered", (
        r"(?:rejected|blocked|denied) by (?:the )?(?:recipient|user|domain|address)'?s? (?:filter|settings|preferences)",
        r"filter", r"because of (?:the )?recipient'?s? (?:settings|preferences)", r"email preferences", r"refused by (?:the )?recipient",
        r"delivery not authorized", r"user refuses", r"user reject",
    )),
    # A connection attempt that timed out until the MTA gave up: expired, not a network
    # refusal, even where the text also says it was "unable to connect".
    ("expired", (r"(?:connection|operation) timed out",)),
    ("networkerror", (
        r"routing loop", r"mail (?:forwarding )?loop", r"loops? (?:back|detected)", r"hop count exceeded", r"too many hops",
        r"network (?:is )?unreachable", r"no route to host", r"connection (?:reset|closed|lost)", r"unable to resolve route",
        r"could not connect", r"couldn'?t connect", r"unable to connect", r"host name lookup failure", r"host not found, try again",
        r"name server reply", r"name server failure", r"temporary (?:dns|lookup|network) failure", r"host is unreachable",
        r"lost connection", r"dns records for the destination computer could not be found", r"message looping",
    )),
    ("policyviolation", (r"(?:for|by|our|due to|violat\w*|against) (?:local |our |the |security |content )?policy",
                         r"policy (?:reason|violation|rejection)", r"prohibited", r"header error",
                         r"administrative prohibition", r"violat", r"message not allowed", r"security issue",)),
    ("blocked", (
        r"blacklist", r"black list", r"blocklist", r"block list", r"\bdnsbl\b", r"\brbl\b", r"spamhaus", r"spamcop", r"sorbs",
        r"listed (?:at|on|in) ", r"client host (?:\[.{1,60}\] )?(?:rejected|blocked)", r"(?:ip|host|client|server|address|connection) (?:\S+ )?(?:is |has been |was )?(?:blocked|banned|denied|refused|blacklisted)",
        r"refused to talk to me", r"connection refused", r"no access from", r"not allowed to send",
        r"sending ip", r"banned", r"service refuse", r"invalid ip for sending", r"dynamic ip", r"dial-?up",
        r"ip address (?:\S+ )?(?:is )?blocked", r"connection refused",
        r"you are not allowed", r"my name was rejected", r"use (?:the smtp server|the mail server|your isp'?s? (?:smtp|mail) server) of your isp",
        r"messages from [\d.]+ weren'?t sent", r"unwanted messages have been sent from the following ip",
    )),

    ("systemerror", (r"unable to contact ldap", r"ldap (?:server )?(?:error|failure|lookup failed)",)),
    ("expired", (
        r"retry timeout exceeded", r"retry time not reached", r"giving up", r"could not be delivered for",
        r"message (?:has been )?(?:expired|timed out)", r"delivery time expired", r"too long in (?:the )?queue", r"in the queue too long",
        r"queue time", r"undelivered (?:for|after)", r"has been delayed", r"will be retried", r"unable to deliver (?:this message )?after",
        r"all hosts have been failing", r"delivery attempts will continue", r"no further attempts",
        r"for the last \d+ ", r"delivery failed \d+ attempts", r"did not accept our requests to connect", r"message expired",
        r"server did not respond", r"envelope expired", r"have been failing for a long time", r"could not find a gateway for",
    )),
    ("systemfull", (r"system (?:is )?full", r"insufficient system storage", r"disk full", r"out of disk", r"queue full",)),
    ("systemerror", (
        r"system error", r"internal (?:server )?error", r"server (?:configuration )?error",
        r"local error", r"service (?:is )?(?:currently |temporarily )?(?:not available|unavailable)", r"resources temporarily unavailable",
        r"mail system (?:error|problem)", r"misconfigur", r"duplicated message-id", r"operating system error", r"i/o error",
        r"error in processing", r"unable to (?:handle|process)", r"insufficient permission", r"server is busy", r"processing error", r"unable to contact ldap",
    )),
    ("contenterror", (r"content error", r"headers? too large", r"invalid (?:mime|content)", r"malformed", r"media error",
                      r"illegal characters",)),
    ("mailererror", (r"mailer error", r"pipe to \|", r"command (?:died|failed|output)", r"procmail", r"x-unix;", r"exit (?:code|status)",
                     r"error in program",)),
    ("syntaxerror", (r"syntax error", r"command unrecognized", r"(?:bad|improper|wrong) sequence", r"unrecognized command", r"command not implemented",
                     r"command parameter not implemented",)),
    ("onhold", (r"on hold", r"hold this message",)),
]

# Generic phrases: they only decide when the status code names no reason.
WEAK_TABLE: list[tuple[str, tuple[str, ...]]] = [
    ("userunknown", (r"recipient address rejected(?:\.|\s*$)",)),
        ("policyviolation", (r"policy", r"not allowed",)),
    ("blocked", (r"refused", r"access denied", r"blocked",)),
    ("rejected", (r"rejected", r"denied",)),
]

# What an MTA says when its own directory or local delivery agent has no such
# mailbox: a lookup verdict, not a remote filter, whatever stage it reports.
LOCAL_LOOKUP = (
    r"not listed in (?:the )?(?:\w+ )?(?:directory|public name & address book|address book)",
    r"recipient name is not recognized", r"mail\.local: unknown user", r"resolver\.adr\.recip",
)
