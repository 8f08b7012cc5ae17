# Registers the every-minute notifyctl task. Run from an elevated PowerShell:
#   powershell -ExecutionPolicy Bypass -File contrib\windows\register-task.ps1
# Idempotent: re-running replaces the task, re-applies the folder's ACL and keeps the data.
#Requires -RunAsAdministrator
$ErrorActionPreference = 'Stop'

$exe  = "$env:ProgramFiles\notifyctl\notifyctl.exe"
# Must match the paths in notifyctl-task.xml (task XML has no variables).
$data = "$env:ProgramData\notifyctl"
$db   = Join-Path $data 'notifyctl.db'
$cfg  = Join-Path $data 'config.toml'

if (-not (Test-Path $exe)) { throw "install notifyctl.exe to $exe first" }

$xml = Get-Content -Path (Join-Path $PSScriptRoot 'notifyctl-task.xml') | Out-String
# The account the task runs as (NETWORK SERVICE, S-1-5-20, in the shipped XML).
$account = ([xml]$xml).Task.Principals.Principal.UserId
if (-not $account) { throw "notifyctl-task.xml names no Principal UserId" }
if ($account -like 'S-1-*') { $account = "*$account" }   # icacls takes a SID as *S-1-...

New-Item -ItemType Directory -Force -Path $data | Out-Null
# Files are private: C:\ProgramData lets every local user read what is created below it,
# and the database, config and .eml files inherit that. Cut the inheritance and allow
# only SYSTEM (S-1-5-18) and Administrators (S-1-5-32-544) full control, and the task's
# account modify (SQLite creates -wal/-shm files next to the database; emails may go to
# outbox\). (OI)(CI): files and folders created inside inherit exactly this.
icacls $data /inheritance:r /grant:r '*S-1-5-18:(OI)(CI)F' '*S-1-5-32-544:(OI)(CI)F' "${account}:(OI)(CI)M" | Out-Null
if ($LASTEXITCODE) { throw "icacls $data failed ($LASTEXITCODE)" }
# Files left by an earlier install still carry the old inherited entries: reset them to
# inherit from the folder only.
if (Get-ChildItem -Force -Path $data) {
    icacls (Join-Path $data '*') /reset /T /C /Q | Out-Null
    if ($LASTEXITCODE) { throw "icacls /reset under $data failed ($LASTEXITCODE)" }
}

# An empty config means built-in defaults; the task passes --config, so it must exist.
if (-not (Test-Path $cfg)) { New-Item -ItemType File -Path $cfg | Out-Null }

& $exe --db $db --config $cfg init
if ($LASTEXITCODE) { throw "notifyctl init failed ($LASTEXITCODE)" }

Register-ScheduledTask -Xml $xml -TaskName notifyctl -Force | Out-Null
Write-Host "registered task 'notifyctl' (every minute); $data is readable by SYSTEM, Administrators and $account only"
Write-Host "check with: notifyctl --db `"$db`" status --max-age 5m"
