-- Argo CD health check of mysql-aa.io/MySQLActiveActive.
-- Install: argocd-cm, key resource.customizations.health.mysql-aa.io_MySQLActiveActive
-- (see deploy/argocd/README.md). It reads what Flux and kstatus read: the
-- Ready condition and status.observedGeneration.
hs = {}
if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. obj.metadata.generation
  return hs
end
local ready = nil
local conflict = nil
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then ready = c end
  if c.type == "ConflictDetected" and c.status == "True" then conflict = c end
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "No Ready condition yet"
  return hs
end
if ready.status == "True" then
  if conflict ~= nil then
    hs.status = "Degraded"
    hs.message = "Conflict: " .. (conflict.message or conflict.reason or "")
    return hs
  end
  hs.status = "Healthy"
  hs.message = ready.message or "Ready"
  return hs
end
-- Not Ready: a spec or credential problem, a halted applier, no writer or a
-- failed step needs a human; anything else is the operator at work.
local stuck = {
  InvalidSpec = true, CredentialsMissing = true, ReplicationHalted = true,
  NoWriter = true, Degraded = true, StepFailed = true,
}
if stuck[ready.reason] then
  hs.status = "Degraded"
elseif ready.reason == "Paused" then
  hs.status = "Suspended"
else
  hs.status = "Progressing"
end
hs.message = (ready.reason or "") .. ": " .. (ready.message or "")
return hs
