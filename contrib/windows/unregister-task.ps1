# Removes the notifyctl task. Keeps %ProgramData%\notifyctl (database, config,
# outbox): delete it by hand if you really want the data gone.
#Requires -RunAsAdministrator
$ErrorActionPreference = 'Stop'
Unregister-ScheduledTask -TaskName notifyctl -Confirm:$false
Write-Host "unregistered task 'notifyctl'"
