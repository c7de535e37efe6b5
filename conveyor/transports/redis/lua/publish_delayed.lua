-- ARGV: delay ms, element... Schedules elements, in order, due after the delay.
local due = now_ms() + tonumber(ARGV[1])
for i = 2, #ARGV do schedule(k.delayed, k.seq, ARGV[i], due) end
